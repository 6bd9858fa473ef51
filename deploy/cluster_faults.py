"""``python -m deploy cluster faults``: one fault at a time under load, each measured.

Runs in the ``client`` namespace (``deploy/__main__`` re-enters it there) with
:class:`deploy.cluster_load.Load` running throughout. Per fault: a quiet
``before`` phase, the fault and its ``during`` phase, the recovery and an
``after`` phase. Reported per fault: requests and how many failed, for how long
they failed, the time from the fault to the first success after the last
failure, messages accepted / lost / duplicated, and the chat delivery latency
(p50 / p95) before, during and after. The run fails (exit 1) when any message
was lost or duplicated.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.cluster import Cluster
from deploy.cluster_load import Load
from deploy.cluster_topology import (
    APP_HOSTS,
    DB_HOSTS,
    REDIS_HOSTS,
    REDIS_PORT,
    ClusterError,
    address,
    in_ns,
    namespace,
)
from deploy.settings import REPO_DIR


@dataclass
class Fault:
    name: str
    inject: Callable[[], None]
    recover: Callable[[], None] | None
    during_secs: float


class FaultUnavailable(ClusterError):
    """This machine cannot inject the fault (e.g. a kernel without ``sch_netem``): reported, not run."""


@dataclass
class Phases:
    before: float
    fault: float
    recovered: float
    end: float


def _pids_named(host: str, name: str, exclude: str = "") -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", namespace(host)], capture_output=True, text=True).stdout
    found = []
    for pid in (int(p) for p in out.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if name in cmdline and not (exclude and exclude in cmdline):
            found.append(pid)
    return found


def _sh(*command: str, env: dict[str, str] | None = None, timeout: float = 300) -> None:
    result = subprocess.run(
        list(command), capture_output=True, text=True, env=env, cwd=REPO_DIR, timeout=timeout
    )
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(command)}: {result.stderr.strip()[-1500:]}")


class FaultRun:
    def __init__(self, cluster: Cluster, short: bool) -> None:
        self.cluster = cluster
        self.short = short
        self.killed_redis: str | None = None
        self.before_secs = 5.0 if short else 10.0
        self.after_secs = 5.0 if short else 15.0

    # -- faults -------------------------------------------------------------------
    def kill_redis_primary(self) -> None:
        primary = self.cluster.redis_primary()
        host = next(h for h in REDIS_HOSTS if address(h) == primary)
        for pid in _pids_named(host, "redis-server", exclude="sentinel"):
            os.kill(pid, 9)
        self.killed_redis = host

    def heal_redis(self) -> None:
        """Wait for the sentinels' new primary, then bring the killed node back as its replica."""
        deadline = time.monotonic() + 60
        while True:
            primary = self.cluster.redis_primary()
            if primary and primary != address(self.killed_redis or ""):
                break
            if time.monotonic() > deadline:
                raise ClusterError("no Sentinel failover within 60 s")
            time.sleep(0.2)
        host = self.killed_redis or REDIS_HOSTS[0]
        command = [
            "redis-server", "--port", str(REDIS_PORT), "--bind", address(host), "--protected-mode", "no",
            "--save", "", "--appendonly", "no", "--dir", str(self.cluster.settings.run_dir / host),
            "--replicaof", primary, str(REDIS_PORT),
        ]  # fmt: skip
        self.cluster.spawn(f"redis-{host}-again", host, command)

    def kill_db_writer(self) -> None:
        for pid in _pids_named(DB_HOSTS[0], "mariadbd"):
            os.kill(pid, 9)

    def partition_app2(self) -> None:
        for rule in (
            ["-I", "INPUT", "-i", "eth0", "-j", "DROP"],
            ["-I", "OUTPUT", "-o", "eth0", "-j", "DROP"],
        ):
            _sh(*in_ns(APP_HOSTS[1], "iptables", *rule))

    def heal_app2(self) -> None:
        _sh(*in_ns(APP_HOSTS[1], "iptables", "-F"))

    def slow_db_link(self) -> None:
        probe = subprocess.run(
            in_ns(DB_HOSTS[1], "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"),
            capture_output=True, text=True,
        )  # fmt: skip
        if probe.returncode != 0:
            raise FaultUnavailable(f"tc netem: {probe.stderr.strip()} (the kernel lacks sch_netem)")
        _sh(*in_ns(DB_HOSTS[1], "tc", "qdisc", "del", "dev", "lo", "root"))
        for host in DB_HOSTS[1:]:
            _sh(*in_ns(host, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "100ms"))

    def heal_db_link(self) -> None:
        for host in DB_HOSTS[1:]:
            _sh(*in_ns(host, "tc", "qdisc", "del", "dev", "eth0", "root"))

    def rolling_deploy(self) -> None:
        for host in APP_HOSTS:
            _sh(*in_ns(host, self.cluster.settings.python, "-m", "deploy", "restart"),
                env=self.cluster.settings.app_env(host))  # fmt: skip

    def faults(self) -> list[Fault]:
        during = 8.0 if self.short else 20.0
        chosen = [
            Fault(
                "SIGKILL of the Redis primary (Sentinel failover)",
                self.kill_redis_primary,
                self.heal_redis,
                during,
            ),
            Fault("loss of one database node (the writing one)", self.kill_db_writer, None, during),
        ]
        if not self.short:
            chosen += [
                Fault("partition of app host 2 (iptables drop), then its return", self.partition_app2,
                      self.heal_app2, 15.0),
                Fault("100 ms latency on the database link (tc netem)", self.slow_db_link,
                      self.heal_db_link, 20.0),
                Fault("rolling deploy across both app hosts", self.rolling_deploy, None, 0.0),
            ]  # fmt: skip
        return chosen

    # -- the run ------------------------------------------------------------------
    def run(self) -> tuple[bool, str]:
        settings = self.cluster.settings
        made = subprocess.run(
            in_ns(APP_HOSTS[0], settings.python, "-m", "flask", "--app", "wsgi_app", "apps", "create",
                  "--name", f"faults-{int(time.time())}"),
            env=settings.app_env(APP_HOSTS[0]), cwd=REPO_DIR, capture_output=True, text=True, check=True,
        )  # fmt: skip
        credentials = json.loads(made.stdout)
        load = Load(settings.base_url, credentials)
        load.start()
        measured: list[tuple[Fault, Phases]] = []
        self.unavailable: list[str] = []
        for fault in self.faults():
            before = time.monotonic()
            time.sleep(self.before_secs)
            injected = time.monotonic()
            try:
                fault.inject()
            except FaultUnavailable as why:
                self.unavailable.append(f"{fault.name}: not run on this machine: {why}")
                continue
            time.sleep(fault.during_secs)
            if fault.recover is not None:
                fault.recover()
            recovered = time.monotonic()
            time.sleep(self.after_secs)
            measured.append((fault, Phases(before, injected, recovered, time.monotonic())))
        load.stop()
        return self.report(load, measured)

    def report(self, load: Load, measured: list[tuple[Fault, Phases]]) -> tuple[bool, str]:
        ledger = load.ledger
        lines = [
            "| fault | requests | failed | failing for | first success after | messages accepted / lost / "
            "duplicated | delivery p50 / p95 ms before | during | after |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        ok = True
        for fault, phases in measured:
            window = [r for r in ledger.requests if phases.fault <= r.at < phases.end]
            failed = [r for r in window if r.status != 200]
            failing_for = (failed[-1].at - failed[0].at) if failed else 0.0
            first_success = 0.0
            if failed:
                later = [r for r in window if r.at > failed[-1].at and r.status == 200]
                first_success = (later[0].at - phases.fault) if later else float("nan")
            accepted = {m: at for m, at in ledger.accepted.items() if phases.before <= at < phases.end}
            lost = [m for m in accepted if m not in ledger.received]
            duplicated = [m for m in accepted if len(ledger.received.get(m, [])) > 1]
            ok = ok and not lost and not duplicated
            latency = [
                _latency(ledger, accepted, start, stop)
                for start, stop in (
                    (phases.before, phases.fault),
                    (phases.fault, phases.recovered),
                    (phases.recovered, phases.end),
                )
            ]
            kinds = ", ".join(sorted({f"{r.endpoint} {r.status}" for r in failed})[:4])
            lines.append(
                f"| {fault.name} | {len(window)} | {len(failed)}{' (' + kinds + ')' if failed else ''} "
                f"| {failing_for:.1f} s | {first_success:.1f} s | {len(accepted)} / {len(lost)} / "
                f"{len(duplicated)} | {latency[0]} | {latency[1]} | {latency[2]} |"
            )
        lines += ["", *self.unavailable] if self.unavailable else []
        started = min(ledger.accepted.values(), default=0.0)
        for message in sorted(m for m in ledger.accepted if m not in ledger.received):
            user = ledger.recipient.get(message, 0)
            polled_at, status, cursor = ledger.last_poll.get(user, (0.0, 0, 0))
            accepted_at = ledger.accepted[message] - started
            lines.append(
                f"LOST message {message} to user {user}, accepted at +{accepted_at:.1f} s; "
                f"that user's last poll at +{polled_at - started:.1f} s: status {status}, cursor {cursor}"
            )
        total_lost = [m for m in ledger.accepted if m not in ledger.received]
        total_dup = [m for m, times in ledger.received.items() if len(times) > 1]
        lines.append("")
        lines.append(
            f"whole run: {len(ledger.requests)} requests, {len(ledger.accepted)} messages accepted, "
            f"{len(total_lost)} lost, {len(total_dup)} duplicated"
        )
        return ok and not total_lost and not total_dup, "\n".join(lines)


def _latency(ledger: object, accepted: dict[int, float], start: float, stop: float) -> str:
    received = ledger.received  # type: ignore[attr-defined]
    delays = sorted(
        (received[m][0] - at) * 1000 for m, at in accepted.items() if start <= at < stop and m in received
    )
    if not delays:
        return "-"
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    return f"{statistics.median(delays):.0f} / {p95:.0f}"
