"""``python -m deploy loadtest``: locust, headless and bounded, against the supervised stack.

Runs ``locustfile.py`` (the realistic mix) through nginx for ``--run-time`` and
judges the result. The command fails (exit status 1) when:

- locust itself failed: a precondition of the locust file (the server does not echo SMS
  codes, so nobody can sign in) or a kind of person (Browser, Chatter, StreamChatter, VipBuyer) that made
  no request; the reason locust gives is printed. An empty run never passes;
- any request failed, over the whole run (a 429 is listed as "rate limited (429)");
- an endpoint's p95 is over its limit in the steady state: the requests after a stated
  warm-up (by default the spawn time plus ``WARMUP_MARGIN_SECS``), so the sign-in burst of
  the spawn does not decide the verdict. Endpoints called only during the warm-up (sign-in)
  are listed, not judged. The long-poll is judged against the server's wait
  (``LONGPOLL_TIMEOUT_SECS``) plus a margin, not against the CRUD limit.

Credentials: ``DT_APPKEY``/``DT_APPSECRET`` when set; otherwise one "loadtest" application,
created with the Flask CLI (same environment: DATABASE_URL) on the first run, kept in the run
directory (owner-only) and reused while it is active in that database.
Loopback only (the locust file refuses others).
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
from typing import Any

from deploy.settings import REPO_DIR, StackSettings

P95_LIMIT_MS = 1000  # every endpoint but the long-poll (DT_LOADTEST_P95_MS)
POLL_NAME = "/api/chat/poll"
POLL_NAMES = frozenset({POLL_NAME, "/api/events/poll"})  # the long-polls: judged by the server's wait
POLL_MARGIN_SECS = 10.0
WARMUP_MARGIN_SECS = 5.0  # beyond the spawn time: the last people's sign-in and first calls
MIN_STEADY_SECS = 10.0  # a run shorter than warm-up + this has no steady state to judge
# locustfile.py's kinds of person weigh 6:2:2:1: fewer people than the sum leaves one out.
MIN_USERS = 11
APP_NAME = "loadtest"
APP_RECORD = "loadtest-app.json"  # in the run directory, owner-only


@dataclass
class Verdict:
    ok: bool
    report: str


def _flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi_app", *args],
        env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)}: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def _credentials(env: dict[str, str], settings: StackSettings) -> dict[str, str]:
    """DT_APPKEY/DT_APPSECRET, or the one "loadtest" application (reused while active)."""
    if env.get("DT_APPKEY") and env.get("DT_APPSECRET"):
        return {}
    record = settings.run_dir / APP_RECORD
    app: dict[str, Any] | None = None
    try:
        app = json.loads(record.read_text())
    except (OSError, ValueError):
        app = None
    if app is not None:
        active = {
            json.loads(line)["appkey"] for line in _flask(env, "apps", "list", "--active-only").splitlines()
        }
        if app.get("appkey") not in active:
            app = None  # another database, or disabled: make a new one
    if app is None:
        app = json.loads(_flask(env, "apps", "create", "--name", APP_NAME))
        record.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(app, f)
    return {
        "DT_APPKEY": app["appkey"],
        "DT_APPSECRET": app["appsecret"],
        "DT_SIGN_METHOD": app["sign_method"],
    }


def judge(
    stats_csv: Path,
    failures_csv: Path,
    steady: list[dict[str, Any]],
    poll_limit_ms: float,
    default_limit_ms: float,
    warmup_secs: float = 0.0,
) -> Verdict:
    """Failures over the whole run (``stats_csv``), p95 over the steady state (``steady``)."""
    steady_by_key = {(row["method"], row["name"]): row for row in steady}
    lines = [
        f"p95 judged after a warm-up of {warmup_secs:.0f} s; failures over the whole run",
        "| endpoint | requests | failures | steady requests | steady p95 ms | limit ms | |",
        "|---|---|---|---|---|---|---|",
    ]
    ok = True
    total = 0
    with stats_csv.open() as f:
        for row in csv.DictReader(f):
            name = row["Name"]
            if name == "Aggregated":
                continue
            limit = poll_limit_ms if name in POLL_NAMES else default_limit_ms
            failed = int(row["Failure Count"])
            total += int(row["Request Count"])
            after = steady_by_key.get((row["Type"], name))
            if after and after["requests"]:
                p95 = float(after["p95_ms"])
                good = failed == 0 and p95 <= limit
                judged = [str(after["requests"]), f"{p95:.0f}", f"{limit:.0f}", "ok" if good else "FAIL"]
            else:
                good = failed == 0
                judged = ["0", "-", "-", "warm-up only: p95 not judged" if good else "FAIL"]
            ok = ok and good
            cells = [f"{row['Type']} {name}", row["Request Count"], str(failed), *judged]
            lines.append("| " + " | ".join(cells) + " |")
    with failures_csv.open() as f:
        for row in csv.DictReader(f):
            lines.append(f"failure: {row['Method']} {row['Name']}: {row['Error']} x{row['Occurrences']}")
    if total == 0:
        ok = False
        lines.append("FAIL: no request was made")
    return Verdict(ok, "\n".join(lines))


def run_secs(run_time: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(run_time[:-1]) * units[run_time[-1]] if run_time[-1] in units else float(run_time)


def run(
    users: int,
    spawn_rate: float,
    run_time: str,
    settings: StackSettings | None = None,
    extra_env: dict[str, str] | None = None,
    p95_limit_ms: float | None = None,
    warmup_secs: float | None = None,
) -> Verdict:
    settings = settings or StackSettings.from_env()
    env = {**settings.process_env(), "PYTHONPATH": str(REPO_DIR), **(extra_env or {})}
    if warmup_secs is None:
        configured = env.get("DT_LOADTEST_WARMUP_SECS")
        warmup_secs = float(configured) if configured else users / spawn_rate + WARMUP_MARGIN_SECS
    if users < MIN_USERS:
        return Verdict(
            False, f"--users must be at least {MIN_USERS}: the mix is 6:2:2:1, fewer leave one out"
        )
    if run_secs(run_time) < warmup_secs + MIN_STEADY_SECS:
        return Verdict(
            False,
            f"--run-time {run_time} leaves no steady state after the {warmup_secs:.0f} s warm-up: "
            f"run at least {warmup_secs + MIN_STEADY_SECS:.0f}s (or lower --warmup)",
        )
    try:
        env.update(_credentials(env, settings))
    except (RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as err:
        return Verdict(False, f"no application to sign with: {err}")
    poll_limit_ms = 1000 * (float(env.get("LONGPOLL_TIMEOUT_SECS") or 50) + POLL_MARGIN_SECS)
    default_limit_ms = p95_limit_ms or float(os.environ.get("DT_LOADTEST_P95_MS") or P95_LIMIT_MS)
    with tempfile.TemporaryDirectory(prefix="dt-locust-") as tmp:
        prefix = Path(tmp) / "run"
        steady_json = Path(tmp) / "steady.json"
        env.update({"DT_LOADTEST_WARMUP_SECS": str(warmup_secs), "DT_LOADTEST_STEADY_JSON": str(steady_json)})
        result = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(REPO_DIR / "locustfile.py"), "--headless",
                "-u", str(users), "-r", str(spawn_rate), "--run-time", run_time, "--stop-timeout", "5",
                "--host", settings.base_url, "--csv", str(prefix), "--only-summary",
            ],
            env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=run_secs(run_time) + 120,
        )  # fmt: skip
        stats = Path(f"{prefix}_stats.csv")
        recorded = json.loads(steady_json.read_text()) if steady_json.exists() else {}
        if not stats.exists():
            return Verdict(False, "locust did not run:\n" + (result.stdout + result.stderr)[-3000:])
        verdict = judge(
            stats, Path(f"{prefix}_failures.csv"), recorded.get("steady", []), poll_limit_ms,
            default_limit_ms, warmup_secs,
        )  # fmt: skip
        if result.returncode != 0:
            reasons = recorded.get("problems") or [_last_error(result.stdout + result.stderr)]
            failed = [f"FAIL: locust exited {result.returncode}: {reason}" for reason in reasons]
            return Verdict(False, "\n".join([*failed, verdict.report]))
        return verdict


def _last_error(output: str) -> str:
    lines = [line for line in output.splitlines() if "ERROR" in line or "Error" in line]
    return (lines[-1] if lines else output.strip().splitlines()[-1] if output.strip() else "no output")[-500:]
