"""``python -m deploy loadtest``: locust, headless and bounded, against the supervised stack.

Runs ``locustfile.py`` (the realistic mix) through nginx for ``--run-time`` and
judges the result: the command fails when any request failed (a 429 is listed
as "rate limited (429)") or when an endpoint's p95 is over its limit. The
long-poll is judged separately: its p95 is bounded by the server's wait
(``LONGPOLL_TIMEOUT_SECS``) plus a margin, not by the CRUD limit. Without
``DT_APPKEY``/``DT_APPSECRET`` an application is created with the Flask CLI
(same environment: DATABASE_URL). Loopback only (the locustfile refuses others).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.settings import REPO_DIR, StackSettings

P95_LIMIT_MS = 1000  # every endpoint but the long-poll (DT_LOADTEST_P95_MS)
# Sign-in is judged at spawn time (every person signs in at once): a looser bound.
P95_LIMIT_FACTOR_BY_ENDPOINT = {"/api/auth/sendsms": 2.0, "/api/auth/login": 2.0, "/api/vip/order": 1.5}
POLL_NAME = "/api/chat/poll"
POLL_NAMES = frozenset({POLL_NAME, "/api/events/poll"})  # the long-polls: judged by the server's wait
POLL_MARGIN_SECS = 10.0


@dataclass
class Verdict:
    ok: bool
    report: str


def _credentials(env: dict[str, str]) -> dict[str, str]:
    if env.get("DT_APPKEY") and env.get("DT_APPSECRET"):
        return {}
    made = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi_app", "apps", "create", "--name", "loadtest"],
        env=env, cwd=REPO_DIR, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    app = json.loads(made.stdout)
    return {
        "DT_APPKEY": app["appkey"],
        "DT_APPSECRET": app["appsecret"],
        "DT_SIGN_METHOD": app["sign_method"],
    }


def judge(stats_csv: Path, failures_csv: Path, poll_limit_ms: float, default_limit_ms: float) -> Verdict:
    lines = ["| endpoint | requests | failures | p95 ms | limit ms | |", "|---|---|---|---|---|---|"]
    ok = True
    with stats_csv.open() as f:
        for row in csv.DictReader(f):
            name = row["Name"]
            if name == "Aggregated":
                continue
            limit = default_limit_ms * P95_LIMIT_FACTOR_BY_ENDPOINT.get(name, 1.0)
            if name in POLL_NAMES:
                limit = poll_limit_ms
            p95 = float(row["95%"] or 0)
            failed = int(row["Failure Count"])
            good = failed == 0 and p95 <= limit
            ok = ok and good
            cells = [f"{row['Type']} {name}", row["Request Count"], failed, f"{p95:.0f}", f"{limit:.0f}"]
            lines.append("| " + " | ".join(str(c) for c in cells) + (" | ok |" if good else " | FAIL |"))
    with failures_csv.open() as f:
        for row in csv.DictReader(f):
            lines.append(f"failure: {row['Method']} {row['Name']}: {row['Error']} x{row['Occurrences']}")
    return Verdict(ok, "\n".join(lines))


def run(
    users: int,
    spawn_rate: float,
    run_time: str,
    settings: StackSettings | None = None,
    extra_env: dict[str, str] | None = None,
    p95_limit_ms: float | None = None,
) -> Verdict:
    settings = settings or StackSettings.from_env()
    env = {**settings.process_env(), "PYTHONPATH": str(REPO_DIR), **(extra_env or {})}
    env.update(_credentials(env))
    poll_limit_ms = 1000 * (float(env.get("LONGPOLL_TIMEOUT_SECS") or 50) + POLL_MARGIN_SECS)
    default_limit_ms = p95_limit_ms or float(os.environ.get("DT_LOADTEST_P95_MS") or P95_LIMIT_MS)
    with tempfile.TemporaryDirectory(prefix="dt-locust-") as tmp:
        prefix = Path(tmp) / "run"
        result = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(REPO_DIR / "locustfile.py"), "--headless",
                "-u", str(users), "-r", str(spawn_rate), "--run-time", run_time, "--stop-timeout", "5",
                "--host", settings.base_url, "--csv", str(prefix), "--only-summary",
            ],
            env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=_timeout_secs(run_time),
        )  # fmt: skip
        stats = Path(f"{prefix}_stats.csv")
        if not stats.exists():
            return Verdict(False, "locust did not run:\n" + (result.stdout + result.stderr)[-3000:])
        return judge(stats, Path(f"{prefix}_failures.csv"), poll_limit_ms, default_limit_ms)


def _timeout_secs(run_time: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    value = float(run_time[:-1]) * units[run_time[-1]] if run_time[-1] in units else float(run_time)
    return value + 120
