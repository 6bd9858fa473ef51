"""Configuration from the environment."""

from __future__ import annotations

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
