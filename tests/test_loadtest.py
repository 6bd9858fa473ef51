"""``python -m deploy loadtest`` against a real server process: an empty run fails, a good one passes.

The load test's address is the stack's nginx; here ``nginx_port`` points it at one
``tornado_server.py`` process (the verdict does not depend on what is in front), with this
run's database and Redis. Loopback only, bounded in users and seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deploy import StackSettings, loadtest
from tests.conftest import REPO_ROOT, once_per_ci_run


def _settings(server_port: int, env: dict[str, str], run_dir: Path) -> StackSettings:
    return StackSettings.from_env(nginx_port=server_port, run_dir=run_dir, env=env)


@once_per_ci_run
def test_loadtest_fails_with_locusts_reason_when_nobody_can_sign_in(
    spawn_server, server_env: dict[str, str], tmp_path: Path
) -> None:
    server = spawn_server(SMS_ECHO_CODE="0", SMS_IP_PER_HOUR="10000", SMS_IP_PER_DAY="10000")
    verdict = loadtest.run(
        loadtest.MIN_USERS,
        loadtest.MIN_USERS,
        "13s",
        _settings(server.port, server_env, tmp_path),
        warmup_secs=2,
    )
    assert not verdict.ok
    assert verdict.report.startswith("FAIL: locust exited 1: sign-in needs SMS_ECHO_CODE=1 on the server")


@once_per_ci_run
def test_loadtest_passes_on_a_server_that_signs_people_in(
    spawn_server, server_env: dict[str, str], tmp_path: Path
) -> None:
    server = spawn_server(SMS_IP_PER_HOUR="10000", SMS_IP_PER_DAY="10000", LONGPOLL_TIMEOUT_SECS="1")
    env = {**server_env, "LONGPOLL_TIMEOUT_SECS": "1"}
    # The p95 limit is loose: this 2-core machine is shared; the limit's rule is tested in test_deploy.
    verdict = loadtest.run(
        loadtest.MIN_USERS,
        loadtest.MIN_USERS,
        "14s",
        _settings(server.port, env, tmp_path),
        p95_limit_ms=10_000,
        warmup_secs=3,
    )
    assert verdict.ok, verdict.report
    assert "after a warm-up of 3 s" in verdict.report
    for endpoint in ("/api/user/hot/list", "/api/chat/poll", "/api/vip/status"):
        assert endpoint in verdict.report


def test_loadtest_reuses_one_application(server_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in server_env.items() if k not in ("DT_APPKEY", "DT_APPSECRET")}
    settings = StackSettings.from_env(run_dir=tmp_path, env=env)

    def loadtest_apps() -> int:
        listed = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi_app", "apps", "list"],
            cwd=REPO_ROOT, env=settings.process_env(), capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return [json.loads(line)["name"] for line in listed.stdout.splitlines()].count(loadtest.APP_NAME)

    before = loadtest_apps()
    first = loadtest._credentials(settings.process_env(), settings)
    assert loadtest_apps() == before + 1
    second = loadtest._credentials(settings.process_env(), settings)
    assert first["DT_APPKEY"] == second["DT_APPKEY"] and loadtest_apps() == before + 1
    assert (tmp_path / loadtest.APP_RECORD).stat().st_mode & 0o077 == 0
