"""The locust file runs a short, bounded load against a real server process on loopback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from wsgi_app.services.auth.applications import AppCredentials

LOCUST_RUN_SECS = 6
USERS = 4  # one of each kind of person (DT_ONE_OF_EACH)


def test_locustfile_runs_without_failures(spawn_server, creds: AppCredentials) -> None:
    server = spawn_server(SMS_IP_PER_HOUR="10000", SMS_IP_PER_DAY="10000", LONGPOLL_TIMEOUT_SECS="1")
    env = {
        **os.environ,
        "DT_APPKEY": creds.appkey,
        "DT_APPSECRET": creds.secret,
        "DT_SIGN_METHOD": creds.sign_method,
        "PYTHONPATH": str(REPO_ROOT),
        "DT_ONE_OF_EACH": "1",
    }
    result = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "locustfile.py"), "--headless",
            "-u", str(USERS), "-r", str(USERS), "--run-time", f"{LOCUST_RUN_SECS}s",
            "--host", server.base_url, "--only-summary", "--stop-timeout", "5",
        ],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for endpoint in ("/api/auth/login", "/api/user/update", "/api/chat/poll", "/api/user/nearby/list"):
        assert endpoint in output  # every simulated person calls these on start
    assert "/api/events/poll" in output  # a StreamChatter's first call after signing in


def test_locustfile_refuses_a_non_loopback_host(creds: AppCredentials) -> None:
    env = {**os.environ, "DT_APPKEY": creds.appkey, "DT_APPSECRET": creds.secret}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "locustfile.py"), "--headless",
            "-u", "1", "-r", "1", "--run-time", "2s", "--host", "http://192.0.2.10:8000",
        ],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "only targets loopback" in result.stdout + result.stderr
