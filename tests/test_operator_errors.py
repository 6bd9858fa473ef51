"""The ordinary mistakes of a newcomer or an operator get one line, never a traceback.

Each test makes the mistake for real, in a process of its own: a Flask command without
``DEV_MODE=1`` on a development machine, a second server on a port already taken, the client
piped into a reader that stops early. And the migrations log in the format ``LOG_FORMAT`` asks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, LiveServer, free_port

FLASK = [sys.executable, "-m", "flask", "--app", "wsgi_app"]


def _fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A shell as the README's reader has it: no DEV_MODE, no secrets, an empty instance folder."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEV_MODE", "SECRET_KEY", "SMS_ECHO_CODE"}}
    env.pop("PAYMENT_PROVIDER_SECRET", None)
    env.update(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'dt.sqlite3'}",
            "REDIS_URL": "memory://",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.update(extra)
    return env


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("command", [["apps", "create", "--name", "x"], ["db", "prepare"]])
def test_a_flask_command_without_dev_mode_says_what_to_set_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    result = subprocess.run(
        FLASK + command, cwd=REPO_ROOT, env=_fresh_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    line = _one_line_error(result.stderr)
    assert line.startswith("Error: refusing to start") and "DEV_MODE=1" in line and "SECRET_KEY" in line


def test_a_second_server_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "tornado_server.py"), "--port", str(port)],
            cwd=REPO_ROOT, env=_fresh_env(tmp_path, DEV_MODE="1"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"127.0.0.1:{port} is already in use" in errors[0], result.stderr


def test_the_client_piped_into_head_ends_quietly(live_server: LiveServer, tmp_path: Path) -> None:
    """The document is far more than a pipe's buffer: the reader leaves after its first line."""
    env = _fresh_env(tmp_path, DT_BASE_URL=live_server.base_url)
    shell = f"{sys.executable} -m datingtoday_client GET /api/openapi.json | head -n 1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout == "{\n"
    assert result.stderr == ""
    assert result.returncode == 0


def test_the_client_help_names_its_environment(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "datingtoday_client", "--help"],
        cwd=REPO_ROOT, env=_fresh_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    for name in ("DT_APPKEY", "DT_APPSECRET", "DT_BASE_URL", "DT_SIGN_METHOD"):
        assert name in result.stdout


def test_log_format_json_formats_the_migrations_lines_too(tmp_path: Path) -> None:
    env = _fresh_env(tmp_path, DEV_MODE="1", LOG_FORMAT="json")
    result = subprocess.run(
        FLASK + ["db", "upgrade"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert any("Running upgrade" in line for line in lines)
    for line in lines:
        entry = json.loads(line)  # every line, Alembic's included
        assert entry["logger"].startswith("alembic") and entry["level"] and entry["ts"].endswith("Z")
