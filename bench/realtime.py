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

Knobs: ``BENCH_PROBES`` (:func:`probes_from_env`), ``BENCH_STEADY_ONLY=1`` (the
headline probe alone), ``BENCH_PROCS``, ``BENCH_STACK=0``
(processes of its own, no nginx), ``BENCH_SERVER_ROOT`` and ``BENCH_PROFILE_DIR``
(:func:`start_servers`), ``BENCH_GENERATOR_GC=on`` (the generator keeps collecting
garbage while it measures, as before 2026-12-07: for comparisons only).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.calibration import calibrate, combined
from bench.common import REPO_ROOT, load_average, machine_info
from bench.realtime_report import render
from bench.realtime_servers import backends, server_env, start_servers, start_stack

PROFILE_NOTES = Path(__file__).with_name("realtime_profile.md")


@dataclass(frozen=True)
class Probe:
    pollers: int
    rate: float  # messages per second
    send_secs: float
    crud_rate: float  # signed profile reads per second beside the sends
    procs: int | None = None  # None: BENCH_PROCS, else 4 (1 for --quick)
    idle_secs: float = 0.0  # re-polls alone (nothing sent) before the sends
    steady: bool = False  # the headline: the send phase spans several poll timeouts


def poll_timeout_secs() -> float:
    """The servers' poll timeout: ``LONGPOLL_TIMEOUT_SECS`` as the app reads it (default 50 s)."""
    return float(os.environ.get("LONGPOLL_TIMEOUT_SECS") or DEFAULT_POLL_TIMEOUT_SECS)


DEFAULT_POLL_TIMEOUT_SECS = 50.0
STEADY_TIMEOUT_PERIODS = 3
QUICK = [Probe(pollers=20, rate=10, send_secs=2, crud_rate=5)]


def full_probes() -> list[Probe]:
    """The headline: 10,000 pollers on ONE process behind nginx at the default timeout, one
    timeout of re-polls alone, then 200 msg/s over three timeouts (every poll times out and
    re-polls three times while messages flow). Then the earlier short probes (send phase
    shorter than a timeout, so no re-poll happens in it: best cases, labelled so)."""
    timeout = poll_timeout_secs()
    steady = Probe(
        10_000, 200, STEADY_TIMEOUT_PERIODS * timeout + 10, 50, procs=1, idle_secs=timeout, steady=True
    )
    return [
        steady,
        Probe(10_000, 200, 30, 50),
        Probe(1_000, 200, 30, 50),
        Probe(10_000, 50, 30, 50),
        Probe(1_000, 50, 30, 50),
    ]


SENDS_PER_SENDER = 40  # under the per-sender limit of 60 a minute


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
    procs = probe.procs or int(os.environ.get("BENCH_PROCS") or (1 if quick else 4))
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
        calibration_port = metrics_port if use_stack else ports[0]
        calibrations = [calibrate(calibration_port, pids[0], 300 if quick else 4000)]
        plan = {
            **seeded,
            "host": "127.0.0.1",
            "ports": ports,
            "server_pids": pids,
            "rate": probe.rate,
            "send_secs": probe.send_secs,
            "crud_rate": probe.crud_rate,
            "grace_secs": 15,
            "idle_secs": probe.idle_secs,
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
            timeout=900 + probe.send_secs + probe.idle_secs,
            check=False,
        )
        if load.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{load.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(load.stdout)
        calibrations.append(calibrate(calibration_port, pids[0], 300 if quick else 4000))
        result.update(
            calibration=asdict(combined(calibrations)),
            poll_timeout_secs=poll_timeout_secs(),
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
        Probe(int(fields[0]), float(fields[1]), float(fields[2]), float(fields[3]))
        for fields in (item.split("/") for item in raw.split(","))
    ]


def run(quick: bool) -> str:
    probes = probes_from_env() or (QUICK if quick else full_probes())
    if not quick and os.environ.get("BENCH_STEADY_ONLY") == "1":  # the headline probe alone
        probes = [probe for probe in probes if probe.steady]
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
