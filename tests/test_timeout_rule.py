"""The one timeout rule (wsgi_app/timeouts.py): nginx's read timeouts come from the poll timeout,
a configuration nginx would cut is refused at start with one line, every wait is bounded."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from deploy import StackSettings
from deploy.render import render_all
from deploy.settings import TimeoutConfigError
from tests.conftest import ServerProcess
from tests.test_transactions import _raw_connection, mariadb_only
from wsgi_app import timeouts
from wsgi_app.db_connect import SESSION_BOUNDS_SQL


def _settings(tmp_path: Path, **overrides: object) -> StackSettings:
    return StackSettings.from_env(
        processes=2, first_port=23201, nginx_port=23280, run_dir=tmp_path / "run", **overrides
    )


def _read_timeouts(nginx: str) -> tuple[str, str]:
    ordinary = re.search(r"proxy_connect_timeout 2s;.*?proxy_read_timeout (\S+);", nginx, re.S)
    poll = re.search(r"location = /api/chat/poll \{.*?proxy_read_timeout (\S+);", nginx, re.S)
    assert ordinary and poll
    return ordinary.group(1), poll.group(1)


def test_nginx_read_timeouts_come_from_the_poll_timeout(tmp_path: Path) -> None:
    settings = _settings(tmp_path, longpoll_timeout_secs=70.0)
    _, nginx_conf = render_all(settings)
    ordinary, poll = _read_timeouts(nginx_conf.read_text())
    assert poll == f"{70 + timeouts.POLL_READ_MARGIN_SECS:g}s"
    assert ordinary == f"{timeouts.DEFAULT_UPSTREAM_READ_TIMEOUT_SECS:g}s"
    env = settings.process_env()  # what each process is told, to check it at start
    assert env["UPSTREAM_POLL_READ_TIMEOUT_SECS"] == f"{70 + timeouts.POLL_READ_MARGIN_SECS:g}"
    assert env["LONGPOLL_TIMEOUT_SECS"] == "70"


def test_deploy_refuses_a_poll_timeout_nginx_would_cut(tmp_path: Path) -> None:
    settings = _settings(tmp_path, longpoll_timeout_secs=130.0, poll_read_timeout_secs=120.0)
    with pytest.raises(TimeoutConfigError, match="LONGPOLL_TIMEOUT_SECS=130"):
        render_all(settings)


def test_deploy_refuses_a_read_timeout_below_a_requests_bounded_waits(tmp_path: Path) -> None:
    settings = _settings(tmp_path, upstream_read_timeout_secs=timeouts.worst_request_wait_secs())
    with pytest.raises(TimeoutConfigError, match="UPSTREAM_READ_TIMEOUT_SECS"):
        render_all(settings)


def test_the_defaults_are_sound() -> None:
    assert (
        timeouts.timeout_problems(
            50, timeouts.poll_read_timeout_secs(50), timeouts.DEFAULT_UPSTREAM_READ_TIMEOUT_SECS
        )
        == []
    )
    assert timeouts.worst_request_wait_secs() < timeouts.DEFAULT_UPSTREAM_READ_TIMEOUT_SECS


def test_a_process_refuses_a_poll_timeout_nginx_would_cut_in_one_line(
    server_env: dict[str, str],
) -> None:
    env = {**server_env, "LONGPOLL_TIMEOUT_SECS": "130", "UPSTREAM_POLL_READ_TIMEOUT_SECS": "120"}
    with pytest.raises(RuntimeError, match="server exited early") as refused:
        ServerProcess(env)
    output = str(refused.value).split("server exited early:\n", 1)[1].strip()
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, output
    assert "refusing to start" in errors[0] and "LONGPOLL_TIMEOUT_SECS=130" in errors[0]
    assert "Traceback" not in output


def test_database_sessions_bound_their_lock_waits() -> None:
    assert f"innodb_lock_wait_timeout = {timeouts.DB_LOCK_WAIT_SECS}" in SESSION_BOUNDS_SQL
    assert f"lock_wait_timeout = {timeouts.DB_LOCK_WAIT_SECS}" in SESSION_BOUNDS_SQL
    assert "/*M!100108 , max_statement_time = 3 */" in SESSION_BOUNDS_SQL


@mariadb_only
def test_a_write_that_meets_a_held_lock_is_answered_busy_in_bounded_time(app, api, user) -> None:
    """A lock held far longer than the bound: the write is answered 525 after one bounded wait
    (not retried into nginx's timeout), and reads of the same row keep working."""
    holder = _raw_connection(app)
    try:
        holder.begin()
        holder.cursor().execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user.user_id,))
        started = time.monotonic()
        reply = api.post("/api/user/update", {"height": 181}, user=user)
        waited = time.monotonic() - started
        assert (reply.status, reply.code) == (503, 525), reply.body
        assert timeouts.DB_LOCK_WAIT_SECS <= waited < 2 * timeouts.DB_LOCK_WAIT_SECS
        assert api.get("/api/user/show", user=user).status == 200
    finally:
        holder.rollback()
        holder.close()
    assert api.post("/api/user/update", {"height": 181}, user=user).status == 200
