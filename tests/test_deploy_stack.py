"""``python -m deploy`` as an operator runs it: checks before starting, no process left behind on a
failure, ``ctl``/``nginx`` on the stack's own configs, ``restart`` that says what it applies.

Each test drives the real command line in its own process, with a one-process stack on free
ports and a temporary run directory (this run's database and Redis). The preflight tests need
nothing installed; the tests of a running stack need nginx (``scripts/integration.sh`` and
``.ci/run`` install it): they fail under CI without it and skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.preflight import port_in_use
from deploy.stack import FULL_RESTART_HINT
from tests.conftest import REPO_ROOT, free_port, once_per_ci_run

DEPLOY = [sys.executable, "-m", "deploy"]


def _deploy(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        DEPLOY + list(args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _stack_env(server_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in server_env.items() if not k.startswith("DT_")}
    env.update(
        {
            "DT_PROCESSES": "1",
            "DT_FIRST_PORT": str(free_port()),
            "DT_NGINX_PORT": str(free_port()),
            "DT_RUN_DIR": str(tmp_path / "run"),
            "DT_START_SECS": "1",
            "DT_READY_TIMEOUT_SECS": "60",
            "SHUTDOWN_DRAIN_SECS": "1",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "CHAT_MEDIA_FOLDER": str(tmp_path / "chat-media"),
        }
    )
    env.update(extra)
    return env


def _processes_of(run_dir: Path) -> list[str]:
    """Command lines of live processes started for this run directory (supervisord, nginx)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(run_dir) in cmdline:
            found.append(cmdline)
    return found


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("REQUIRE_REAL_SERVICES"):
        pytest.fail("nginx is not installed: apt-get install nginx-light (scripts/integration.sh does it)")
    pytest.skip("nginx is not installed")


def test_start_checks_first_and_names_every_cause_in_one_line_each(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    dead_db, dead_redis = free_port(), free_port()
    env = _stack_env(
        server_env,
        tmp_path,
        DT_NGINX=str(tmp_path / "no" / "nginx"),
        DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:{dead_db}/dt",
        REDIS_URL=f"redis://127.0.0.1:{dead_redis}/0",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["DT_NGINX_PORT"])))
        taken.listen()
        began = time.monotonic()
        result = _deploy(env, "start")
    assert result.returncode == 1
    assert time.monotonic() - began < 30  # no waiting for processes that cannot become ready
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    assert any(f"nginx not found at {tmp_path}/no/nginx" in line for line in lines), lines
    assert any(f"port {env['DT_NGINX_PORT']} on 127.0.0.1 is already in use" in line for line in lines)
    assert any(f"cannot connect to Redis at 127.0.0.1:{dead_redis}" in line for line in lines), lines
    # The database's cause in the very words `flask db upgrade` uses.
    upgrade = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi_app", "db", "upgrade"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    upgrade_cause = upgrade.stderr.strip().splitlines()[-1].removeprefix("Error: ")
    assert f"127.0.0.1:{dead_db}" in upgrade_cause
    assert f"error: {upgrade_cause}" in lines
    # Nothing was started.
    assert not (tmp_path / "run" / "supervisord.pid").exists()
    assert _processes_of(tmp_path / "run") == []


def test_start_refuses_settings_a_process_would_refuse(server_env: dict[str, str], tmp_path: Path) -> None:
    env = _stack_env(server_env, tmp_path, DT_NGINX=sys.executable, DT_PROCESSES="2", REDIS_URL="memory://")
    env.pop("DEV_MODE")
    result = _deploy(env, "start")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: refusing to start: SECRET_KEY" in result.stderr
    assert "the stack runs 2 processes: they need one shared Redis" in result.stderr
    assert _processes_of(tmp_path / "run") == []


@once_per_ci_run
def test_a_start_failing_after_supervisord_started_stops_what_it_started(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    """nginx exists but refuses its config: supervisord and its process were already up."""
    fake_nginx = tmp_path / "nginx"
    fake_nginx.write_text("#!/bin/sh\necho 'nginx: [emerg] refused for this test' >&2\nexit 1\n")
    fake_nginx.chmod(0o755)
    env = _stack_env(server_env, tmp_path, DT_NGINX=str(fake_nginx))
    result = _deploy(env, "start")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "refused for this test" in result.stderr and "stopped what this start had started" in result.stderr
    assert (tmp_path / "run" / "log" / f"datingtoday-{env['DT_FIRST_PORT']}.log").exists()  # it had started
    assert _processes_of(tmp_path / "run") == []
    assert not port_in_use("127.0.0.1", int(env["DT_FIRST_PORT"]))


@once_per_ci_run
def test_ctl_nginx_and_restart_operate_the_stacks_own_configs(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = _stack_env(server_env, tmp_path, DT_NGINX=_nginx())
    name = f"datingtoday:datingtoday-{env['DT_FIRST_PORT']}"
    started = _deploy(env, "start")
    try:
        assert started.returncode == 0, started.stderr
        status = _deploy(env, "ctl", "status")
        assert status.returncode == 0 and name in status.stdout and "RUNNING" in status.stdout
        assert _deploy(env, "nginx", "-t").returncode == 0
        assert _deploy(env, "nginx", "-s", "reload").returncode == 0

        same = _deploy(env, "restart")
        assert same.returncode == 0, same.stderr
        assert (
            "re-rendered from the current settings" in same.stdout and "nginx.conf unchanged" in same.stdout
        )
        assert f"{name}: drained in" in same.stdout

        nginx_change = _deploy({**env, "DT_UPSTREAM_KEEPALIVE": "7"}, "restart")
        assert nginx_change.returncode == 0, nginx_change.stderr
        assert (
            "nginx.conf re-rendered ('keepalive 128;' -> 'keepalive 7;') and reloaded" in nginx_change.stdout
        )
        assert "keepalive 7;" in (tmp_path / "run" / "nginx.conf").read_text()

        for changed, setting in (
            ({"SECRET_KEY": "x" * 40}, "SECRET_KEY"),
            ({"DT_START_SECS": "3"}, "startsecs"),
        ):
            refused = _deploy({**env, **changed}, "restart")
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert setting in refused.stderr and FULL_RESTART_HINT in refused.stderr
            assert "drained" not in refused.stdout  # nothing restarted
        assert _deploy(env, "status").returncode == 0
    finally:
        stopped = _deploy(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert _processes_of(tmp_path / "run") == []


def test_ctl_before_any_start_says_where_it_looked(tmp_path: Path) -> None:
    env = {**os.environ, "DT_RUN_DIR": str(tmp_path / "never")}
    result = _deploy(env, "ctl", "status")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: no {tmp_path}/never/supervisord.conf: no stack was started with these settings "
        "(DT_RUN_DIR); python -m deploy start"
    )
