"""Benchmark case ``realtime`` (issue 7's proof): parked long-polls, sends, delivery latency.

Starts the server processes (``deploy.stack`` when it exists, else
``tornado_server.py`` processes of its own on free ports), seeds poller and
sender users with tokens straight into the database, then runs the asyncio
load generator (:mod:`bench.realtime_load`) in its own process and turns its
JSON into a Markdown section.

Backends: ``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL`` when set (e.g. MariaDB
and a Redis database of your own); otherwise a SQLite file and a private
``redis-server`` on a free port, both thrown away afterwards. ``--quick`` runs
one process and a handful of pollers in well under a minute; the full run
probes 10,000 and 1,000 pollers at 200 messages/s.

Knobs: ``BENCH_PROBES`` (:func:`probes_from_env`), ``BENCH_PROCS``, ``BENCH_STACK=0``
(processes of its own, no nginx), ``BENCH_SERVER_ROOT`` and ``BENCH_PROFILE_DIR``
(:func:`start_servers`), ``BENCH_GENERATOR_GC=on`` (the generator keeps collecting
garbage while it measures, as before 2026-12-07: for comparisons only).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, load_average, machine_info
from bench.realtime_report import render

PROFILE_NOTES = Path(__file__).with_name("realtime_profile.md")


@dataclass(frozen=True)
class Probe:
    pollers: int
    rate: float  # messages per second
    send_secs: float
    crud_rate: float  # signed profile reads per second beside the sends


QUICK = [Probe(pollers=20, rate=10, send_secs=2, crud_rate=5)]
# The probes: 10,000 and 1,000 pollers at 200 msg/s, and both at 50 msg/s (its lower-rate targets).
FULL = [
    Probe(10_000, 200, 30, 50),
    Probe(1_000, 200, 30, 50),
    Probe(10_000, 50, 30, 50),
    Probe(1_000, 50, 30, 50),
]
SENDS_PER_SENDER = 40  # under the per-sender limit of 60 a minute


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes], wait_secs: float) -> None:
    proc.terminate()
    proc.wait(wait_secs)


def wait_listening(port: int, proc: subprocess.Popen[bytes], secs: float = 30) -> None:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def backends(stack: ExitStack, workdir: Path) -> tuple[str, str]:
    db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        port = free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(_stop, proc, 10)
        wait_listening(port, proc)
        redis_url = f"redis://127.0.0.1:{port}/0"
    return db_url, redis_url


def server_env(db_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_hex(16),
        PAYMENT_PROVIDER_SECRET=secrets.token_hex(16),
        INSTANCE_PATH=str(workdir),
        UPLOAD_FOLDER=str(workdir / "uploads"),
        PYTHONPATH=str(REPO_ROOT),
        LOG_LEVEL="WARNING",
    )
    return env


def start_servers(stack: ExitStack, env: dict[str, str], count: int) -> tuple[list[int], list[int]]:
    """``(ports, pids)`` of ``count`` tornado_server.py processes.

    ``BENCH_SERVER_ROOT``: run the servers from another tree (e.g. an export of an
    older revision, for before/after figures). ``BENCH_PROFILE_DIR``: run each
    under cProfile (event-loop thread), written there when the process stops.
    """
    root = Path(os.environ.get("BENCH_SERVER_ROOT") or REPO_ROOT)
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    env = {**env, "PYTHONPATH": str(root)}
    ports, pids = [], []
    for _ in range(count):
        port = free_port()
        profiler = ["-m", "cProfile", "-o", f"{profile_dir}/server-{port}.prof"] if profile_dir else []
        proc = subprocess.Popen(
            [sys.executable, *profiler, str(root / "tornado_server.py"), "--port", str(port)],
            cwd=root,
            env=env,
        )
        stack.callback(_stop, proc, 30)
        wait_listening(port, proc)
        ports.append(port)
        pids.append(proc.pid)
    return ports, pids


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports, below the ephemeral range (a previous
    probe's thousands of client sockets linger there in TIME_WAIT)."""
    for _ in range(200):
        first = random.randrange(20_000, 30_000)
        if all(_port_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no block of free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_stack(
    stack: ExitStack, env: dict[str, str], count: int, workdir: Path
) -> tuple[list[int], list[int], list[int], int]:
    """The supervised stack behind nginx (``deploy.stack``): ``(ports, process pids, nginx pids,
    the first process's own port)`` (its ``/metrics`` sums the host's processes)."""
    from deploy import Stack, StackSettings

    settings = StackSettings.from_env(
        processes=count,
        first_port=free_port_block(count),
        nginx_port=free_port(),
        run_dir=workdir / "run",
        upload_dir=workdir / "uploads",
        env=env,
    )
    running = Stack(settings)
    stack.callback(running.stop)
    running.start()
    pids = [p["pid"] for p in running.status()["processes"]]
    nginx = running.nginx_pid()
    return [settings.nginx_port], pids, [nginx, *_children(nginx)], settings.first_port


def seed(env: dict[str, str], pollers: int, senders: int) -> dict[str, Any]:
    """An application, users and tokens, inserted in bulk; each poller's latest-message key."""
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "UPLOAD_FOLDER")})
    from flask_migrate import upgrade

    from wsgi_app import create_app
    from wsgi_app.extensions import db, redis_client
    from wsgi_app.models.user import AuthToken, User
    from wsgi_app.services.auth import applications, tokens
    from wsgi_app.services.chat.events import latest_message_key
    from wsgi_app.timeutil import utcnow

    app = create_app()
    with app.app_context():
        upgrade()
        creds = applications.create_application("bench-realtime", "hmac-sha256")
        tag = secrets.randbelow(10**6)
        now = utcnow()
        rows = [
            {"phone": f"109{tag:06d}{i:06d}", "nickname": f"b{i}", "created_at": now, "updated_at": now}
            for i in range(pollers + senders)
        ]
        db.session.execute(db.insert(User), rows)
        ids = list(
            db.session.execute(
                db.select(User.id).where(User.phone.like(f"109{tag:06d}%")).order_by(User.id)
            ).scalars()
        )
        raw = [secrets.token_hex(32) for _ in ids]
        db.session.execute(
            db.insert(AuthToken),
            [
                {
                    "user_id": uid,
                    "token_hash": tokens.hash_token(tok),
                    "created_at": now,
                    "expires_at": now + timedelta(days=1),
                }
                for uid, tok in zip(ids, raw, strict=True)
            ],
        )
        db.session.commit()
        # Fresh users have no messages: the key the send path keeps says so (0).
        pipe = redis_client().pipeline(transaction=False)
        for uid in ids[:pollers]:
            pipe.set(latest_message_key(uid), "0", nx=True)
        pipe.execute()
    users = [{"user_id": uid, "token": tok} for uid, tok in zip(ids, raw, strict=True)]
    return {
        "appkey": creds.appkey,
        "secret": creds.secret,
        "sign_method": creds.sign_method,
        "pollers": users[:pollers],
        "senders": users[pollers:],
    }


def run_probe(probe: Probe, quick: bool) -> dict[str, Any]:
    procs = int(os.environ.get("BENCH_PROCS") or (1 if quick else 4))
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-rt-"))
        stack.callback(shutil.rmtree, workdir, True)
        db_url, redis_url = backends(stack, workdir)
        env = server_env(db_url, redis_url, workdir)
        seeded = seed(env, probe.pollers, max(4, int(probe.rate * probe.send_secs / SENDS_PER_SENDER) + 1))
        use_stack = (
            not quick
            and os.environ.get("BENCH_STACK", "1") != "0"
            and not os.environ.get("BENCH_SERVER_ROOT")
        )
        if use_stack:
            ports, pids, nginx_pids, metrics_port = start_stack(stack, env, procs, workdir)
        else:
            (ports, pids), nginx_pids = start_servers(stack, env, procs), []
            metrics_port = ports[0]  # no multiprocess directory here: that one process only
        plan = {
            **seeded,
            "host": "127.0.0.1",
            "ports": ports,
            "server_pids": pids,
            "rate": probe.rate,
            "send_secs": probe.send_secs,
            "crud_rate": probe.crud_rate,
            "grace_secs": 15,
            "run_id": secrets.token_hex(4),
            "nginx_pids": nginx_pids,
            "metrics_port": metrics_port,
            # "on": the generator collects garbage while it measures (as before 2026-12-07), for A/B only.
            "generator_gc": os.environ.get("BENCH_GENERATOR_GC", "quiet"),
        }
        load = subprocess.run(
            [sys.executable, "-m", "bench.realtime_load"],
            input=json.dumps(plan),
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=900,
            check=False,
        )
        if load.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{load.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(load.stdout)
        result.update(
            procs=procs,
            load_average=load_average(),
            backend=db_url.split(":")[0],
            via="nginx" if use_stack else "direct",
        )
        return result


def probes_from_env() -> list[Probe] | None:
    """``BENCH_PROBES="pollers/rate/send_secs/crud_rate,..."`` overrides the probes."""
    raw = os.environ.get("BENCH_PROBES")
    if not raw:
        return None
    return [
        Probe(int(fields[0]), *(float(x) for x in fields[1:]))
        for fields in (item.split("/") for item in raw.split(","))
    ]


def run(quick: bool) -> str:
    probes = probes_from_env() or (QUICK if quick else FULL)
    parts = [
        "## Realtime: parked long-polls, sends, delivery (issue 7)",
        "",
        f"Machine: {machine_info()}. Load generator: `bench/realtime_load.py`, one asyncio process, "
        "raw HTTP/1.1 keep-alive, every request HMAC-signed; loopback only. Delivery is measured from "
        "the send's response to the poll answer carrying it (negative clipped to 0).",
        "",
    ]
    for probe in probes:
        try:
            result = run_probe(probe, quick)
        except Exception as err:  # keep the other probes' figures
            if quick:
                raise
            parts.append(f"### {probe.pollers:,} pollers: the probe failed ({err})\n")
            continue
        (Path(tempfile.gettempdir()) / f"bench-realtime-{probe.pollers}.json").write_text(json.dumps(result))
        parts.append(render(probe, result))
    if PROFILE_NOTES.exists():
        parts.append(PROFILE_NOTES.read_text())
    return "\n".join(parts)
