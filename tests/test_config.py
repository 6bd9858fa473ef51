"""Configuration from the environment."""

from __future__ import annotations

import asyncio

import pytest

from wsgi_app import create_app
from wsgi_app.config import config_from_env, engine_options, normalise_database_url


def test_mysql_urls_get_pymysql_and_utf8mb4() -> None:
    assert normalise_database_url("mysql://u:p@db:3306/dating") == (
        "mysql+pymysql://u:p@db:3306/dating?charset=utf8mb4"
    )
    assert normalise_database_url("mysql+pymysql://u@h/d?charset=latin1").endswith("charset=latin1")
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_mysql_engine_has_autocommit_recycle_no_pre_ping_and_a_pool_sized_to_the_threads() -> None:
    options = engine_options("mysql+pymysql://u@h/d", pool_size=10)
    assert "pool_pre_ping" not in options  # a round trip per checkout; dead connections reconnect instead
    assert options["isolation_level"] == "AUTOCOMMIT"
    assert 0 < options["pool_recycle"] <= 3600
    assert options["pool_size"] == 10


def test_defaults_are_the_embedded_mode(monkeypatch, tmp_path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SMS_ECHO_CODE"):
        monkeypatch.delenv(name, raising=False)
    config = config_from_env(str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/datingtoday.sqlite3"
    assert config["REDIS_URL"] == "memory://"
    assert config["SMS_ECHO_CODE"] is False
    assert config["TOKEN_TTL_SECS"] == 7 * 24 * 3600


def test_environment_overrides(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@127.0.0.1/test")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
    monkeypatch.setenv("SMS_ECHO_CODE", "1")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    config = config_from_env(str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("mysql+pymysql://")
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/2"
    assert config["SMS_ECHO_CODE"] is True
    assert config["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]


def test_test_config_overrides_the_environment(tmp_path) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/t.db", "TOKEN_TTL_SECS": 60})
    assert app.config["TOKEN_TTL_SECS"] == 60


def test_the_server_process_reads_its_settings_from_config(monkeypatch, tmp_path) -> None:
    from wsgi_app.config import instance_path_from_env, server_settings_from_env

    for name in (
        "PORT",
        "BIND_ADDRESS",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "SHUTDOWN_DRAIN_SECS",
        "EVENT_LOOP",
        "CPU_AFFINITY",
    ):
        monkeypatch.delenv(name, raising=False)
    defaults = server_settings_from_env()
    assert (defaults.port, defaults.bind_address, defaults.log_level, defaults.log_format) == (
        8000,
        "127.0.0.1",
        "INFO",
        "text",
    )
    assert defaults.shutdown_drain_secs == 10.0
    assert defaults.event_loop == "uvloop"
    assert defaults.cpu_affinity == "auto"
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("BIND_ADDRESS", "0.0.0.0")
    monkeypatch.setenv("SHUTDOWN_DRAIN_SECS", "2.5")
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    settings = server_settings_from_env()
    assert (settings.port, settings.bind_address, settings.shutdown_drain_secs) == (8123, "0.0.0.0", 2.5)
    assert instance_path_from_env() == str(tmp_path)
    monkeypatch.setenv("EVENT_LOOP", "asyncio")
    assert server_settings_from_env().event_loop == "asyncio"
    monkeypatch.setenv("CPU_AFFINITY", "1")
    assert server_settings_from_env().cpu_affinity == "1"
    monkeypatch.setenv("CPU_AFFINITY", "all")
    with pytest.raises(ValueError, match="CPU_AFFINITY must be auto, off or a CPU number"):
        server_settings_from_env()
    monkeypatch.delenv("CPU_AFFINITY")
    monkeypatch.setenv("EVENT_LOOP", "gevent")
    with pytest.raises(ValueError, match="EVENT_LOOP must be one of uvloop, asyncio"):
        server_settings_from_env()


def test_for_testing_helpers_refuse_outside_the_suite(monkeypatch) -> None:
    from async_handlers.waiters import WakeListener
    from wsgi_app.config import TEST_SUITE_ENV, require_test_suite

    require_test_suite("anything")  # the suite sets the variable: allowed here
    monkeypatch.delenv(TEST_SUITE_ENV)
    with pytest.raises(RuntimeError, match="for the test suite only"):
        require_test_suite("drop_connection_for_testing")
    listener = WakeListener.__new__(WakeListener)  # no Redis needed: the guard runs first
    with pytest.raises(RuntimeError, match="for the test suite only"):
        asyncio.run(listener.drop_connection_for_testing())
