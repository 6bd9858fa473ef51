"""Case ``stack``: the whole stack (nginx in front of supervised Tornado processes) under the locust mix.

The stack is started by ``deploy.stack.Stack`` (the same code a real host uses),
on free ports, a run directory under ``bench/_stack`` and the bench's database
and Redis (:mod:`bench.fixture`), with SMS codes echoed and the per-address SMS
limits lifted (every simulated person signs in from 127.0.0.1). Locust runs
headless in its own process with the user classes of ``locustfile.py``
(:mod:`bench.locust_stack` records every request). Reported: requests/s over
the run, per endpoint count, failures, p50/p95/p99; a run with failures is
flagged (and fails the smoke). Locust's users wait between tasks, so this is
the throughput of that mix at that user count, not the stack's ceiling.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import common, fixture
from bench.realtime_servers import free_port_block
from bench.servers import free_port

STACK_DIR = common.BENCH_DIR / "_stack"


@dataclass(frozen=True)
class Settings:
    processes: int
    users: int
    spawn_rate: int
    run_secs: int
    demo_users: int


FULL = Settings(processes=4, users=50, spawn_rate=10, run_secs=60, demo_users=2000)
QUICK = Settings(processes=2, users=4, spawn_rate=4, run_secs=6, demo_users=40)


def run_locust(base_url: str, pop: fixture.Population, cfg: Settings, out: Path) -> None:
    """Run the mix; samples, failures and the run's start and stop times land in ``out``."""
    env = fixture.server_env(
        DT_APPKEY=pop.signer.appkey,
        DT_APPSECRET=pop.signer.secret,
        DT_SIGN_METHOD=pop.signer.sign_method,
        BENCH_LOCUST_SAMPLES=str(out),
    )
    command = [
        str(Path(sys.executable).parent / "locust"),
        "-f",
        str(common.BENCH_DIR / "locust_stack.py"),
        "--headless",
        "-u",
        str(cfg.users),
        "-r",
        str(cfg.spawn_rate),
        "--run-time",
        f"{cfg.run_secs}s",
        "--host",
        base_url,
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    completed = subprocess.run(
        command, cwd=common.REPO_ROOT, env=env, capture_output=True, text=True, timeout=cfg.run_secs + 120
    )
    if not out.exists():
        raise RuntimeError(f"locust wrote no samples ({completed.returncode}): {completed.stderr[-1500:]}")


def run(quick: bool) -> str:
    from deploy.settings import StackSettings
    from deploy.stack import Stack

    cfg = QUICK if quick else FULL
    pop = fixture.prepare(cfg.demo_users, callers=1)
    first_port = free_port_block(cfg.processes)
    settings = StackSettings.from_env(
        processes=cfg.processes,
        first_port=first_port,
        nginx_port=free_port(),
        run_dir=STACK_DIR,
        start_secs=1,
        upload_dir=fixture.INSTANCE_DIR / "uploads",
        # The locust mix signs people in with the SMS code echoed in the answer, which the app
        # allows only in development mode (DEV_MODE changes nothing else: the secrets check).
        env=fixture.server_env(
            SMS_ECHO_CODE="1",
            DEV_MODE="1",
            SMS_IP_PER_HOUR="1000000",
            SMS_IP_PER_DAY="1000000",
            SERVE_UPLOADS="0",
        ),
    )
    stack = Stack(settings)
    load_before = common.load_average()
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp:
        out = Path(tmp) / "samples.json"
        stack.start()
        try:
            run_locust(stack.base_url, pop, cfg, out)
        finally:
            stack.stop()
        recorded = json.loads(out.read_text())
    load_after = common.load_average()
    fixture.flush_redis()
    samples: dict[str, list[float]] = recorded["samples"]
    failures: dict[str, int] = recorded["failures"]
    total = sum(len(v) for v in samples.values())
    failed = sum(failures.values())
    run_secs = recorded["stopped"] - recorded.get("started", recorded["stopped"])
    if quick and (failed or total == 0 or run_secs < cfg.run_secs / 2):
        raise RuntimeError(f"stack smoke: {total} requests in {run_secs:.1f} s, failures {failures}")
    rows = []
    for key in sorted(samples):
        pct = common.percentiles(samples[key])
        rows.append(
            f"| `{key}` | {len(samples[key])} | {failures.get(key, 0)} "
            f"| {pct['p50']:.1f} | {pct['p95']:.1f} | {pct['p99']:.1f} |"
        )
    plot = common.plot_latencies(
        "stack", {k: v for k, v in samples.items() if len(v) >= 20}, "stack: locust mix through nginx"
    )
    return "\n".join(
        [
            "## stack: nginx + supervised tornado_server.py processes, the locust mix",
            "",
            f"{cfg.processes} processes behind nginx (`deploy.stack.Stack`), {cfg.users} locust users "
            f"(spawn {cfg.spawn_rate}/s) for {cfg.run_secs} s, `locustfile.py`'s mix (sign-in, profile, hot "
            f"list, nearby, chat send, long-poll); MariaDB + Redis; {cfg.demo_users} demo users. "
            f"Load average before {load_before}, after {load_after}.",
            "",
            f"**{common.ratio(total, run_secs) or 0:,.1f} requests/s** over the {run_secs:.0f} s the "
            f"users ran ({total} requests, {failed} failures; "
            "long-polls count when they answer). Locust users wait 0.5-2 s between tasks: this is the "
            "mix at that user count, not the stack's ceiling (see `crud` for per-process ceilings).",
            "",
            "| endpoint | requests | failures | p50 ms | p95 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *(
                ["", "Failures:", ""] + [f"- {n} x {r}" for r, n in recorded.get("reasons", {}).items()]
                if failed
                else []
            ),
            "",
            f"![stack latency CDF]({plot})",
        ]
    )
