"""Configuration read from the environment (twelve-factor style).

``create_app(test_config)`` starts from :func:`config_from_env` and overlays
``test_config``. Defaults give the embedded mode: a SQLite file in the
instance folder and an in-process Redis stand-in (``REDIS_URL=memory://``).

Everything any process reads from the environment is read here: the Flask
settings (:func:`config_from_env`), the instance folder
(:func:`instance_path_from_env`), the server process's own settings
(:func:`server_settings_from_env`: ``PORT``, ``BIND_ADDRESS``, ``LOG_LEVEL``,
``LOG_FORMAT``, ``SHUTDOWN_DRAIN_SECS``, ``EVENT_LOOP``, ``CPU_AFFINITY``) and whether
the test suite is running
(:func:`require_test_suite`). Each default is written once, here.

Secrets have development values only in development mode (``DEV_MODE=1``, which
``scripts/run.sh``, ``.ci/run`` and the tests set): otherwise
:func:`check_production_secrets` refuses to start without real ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wsgi_app import timeouts
from wsgi_app.db_connect import DB_POOL_TIMEOUT_SECS  # also bounds every MySQL connect

EMBEDDED_REDIS_URL = "memory://"
# The name Redis Sentinel monitors the primary under (REDIS_SENTINEL_MASTER; deploy's cluster uses it too).
DEFAULT_SENTINEL_MASTER = "datingtoday"
DEV_SECRET_KEY = "dev-only-secret-change-me"
DEV_PAYMENT_PROVIDER_SECRET = "dev-only-payment-secret"
MIN_SECRET_CHARS = 16
# Secrets that must be set (to a value that is not the development one) outside development mode.
PRODUCTION_SECRETS = {"SECRET_KEY": DEV_SECRET_KEY, "PAYMENT_PROVIDER_SECRET": DEV_PAYMENT_PROVIDER_SECRET}


class InsecureConfigError(RuntimeError):
    """The process must not start: a secret is missing or is the development value."""


class TimeoutRuleError(InsecureConfigError):
    """The process must not start: nginx would cut what it answers (wsgi_app/timeouts.py)."""


def check_timeout_rule(config: dict[str, Any]) -> None:
    """Refuse, in one line, a poll timeout or a request's bounded waits that nginx would cut."""
    problems = timeouts.timeout_problems(
        config["LONGPOLL_TIMEOUT_SECS"],
        config.get("UPSTREAM_POLL_READ_TIMEOUT_SECS"),
        config.get("UPSTREAM_READ_TIMEOUT_SECS"),
    )
    if problems:
        raise TimeoutRuleError("refusing to start: " + "; ".join(problems))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if not raw:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def normalise_database_url(url: str) -> str:
    """Force utf8mb4 on MySQL URLs so emoji nicknames and chat messages survive."""
    if not url.startswith("mysql"):
        return url
    if url.startswith("mysql://"):
        url = "mysql+pymysql://" + url[len("mysql://") :]
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("charset", "utf8mb4")
    return urlunsplit(parts._replace(query=urlencode(query)))


# Pooled MySQL connections are replaced after this long (well under the server's wait_timeout);
# a connection that died sooner is reconnected on first use (wsgi_app.database), not pinged.
POOL_RECYCLE_SECS = 600


def engine_options(url: str, pool_size: int) -> dict[str, Any]:
    """SQLAlchemy engine options: autocommit reads (see ``wsgi_app.database``), recycle for
    MySQL instead of a pre-ping round trip per checkout, a busy timeout for SQLite."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "isolation_level": "AUTOCOMMIT"}
    return {
        "isolation_level": "AUTOCOMMIT",
        "pool_recycle": POOL_RECYCLE_SECS,
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": 10,
    }


def check_production_secrets(config: dict[str, Any]) -> None:
    """Refuse to run outside development mode with a missing, short or development secret."""
    if config.get("DEV_MODE"):
        return
    problems = []
    for name, dev_value in PRODUCTION_SECRETS.items():
        value = config.get(name) or ""
        if not value or value == dev_value or len(value) < MIN_SECRET_CHARS:
            problems.append(name)
    if config.get("SMS_ECHO_CODE"):
        problems.append("SMS_ECHO_CODE (must be off)")
    if problems:
        raise InsecureConfigError(
            "refusing to start: " + ", ".join(problems) + " missing or a development value. Set "
            f"SECRET_KEY and PAYMENT_PROVIDER_SECRET to random values of at least {MIN_SECRET_CHARS} "
            "characters (python -c 'import secrets; print(secrets.token_urlsafe(32))') and leave "
            "SMS_ECHO_CODE unset, or set DEV_MODE=1 on a development machine."
        )


FLASK_CLI_ENV = "FLASK_RUN_FROM_CLI"  # set by `flask --app wsgi_app ...` before it calls the factory


def running_flask_cli() -> bool:  # there a refusal is one line, not a traceback
    return os.environ.get(FLASK_CLI_ENV) == "true"


def with_bounded_waits(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """MySQL engine options with a bounded pool wait (connects: ``wsgi_app.db_connect``)."""
    return options if url.startswith("sqlite") else {**options, "pool_timeout": DB_POOL_TIMEOUT_SECS}


def instance_path_from_env() -> str:
    return os.environ.get("INSTANCE_PATH") or str(Path.cwd() / "instance")


DEFAULT_SHUTDOWN_DRAIN_SECS = 10.0


@dataclass(frozen=True)
class ServerSettings:
    """What ``tornado_server.py`` itself needs, read once at start."""

    port: int
    bind_address: str
    log_level: str
    log_format: str
    shutdown_drain_secs: float
    event_loop: str = "uvloop"
    cpu_affinity: str = "auto"


def server_settings_from_env() -> ServerSettings:
    return ServerSettings(
        port=_env_int("PORT", 8000),
        bind_address=os.environ.get("BIND_ADDRESS") or "127.0.0.1",
        log_level=os.environ.get("LOG_LEVEL") or "INFO",
        log_format=_log_format(),
        shutdown_drain_secs=float(os.environ.get("SHUTDOWN_DRAIN_SECS") or DEFAULT_SHUTDOWN_DRAIN_SECS),
        event_loop=_event_loop(),
        cpu_affinity=_cpu_affinity(),
    )


EVENT_LOOPS = ("uvloop", "asyncio")


def _event_loop() -> str:
    """``EVENT_LOOP``: ``uvloop`` (the default: libuv's loop, ~8% less CPU per native request,
    bench/crud_profile.md) or ``asyncio`` (the standard library's)."""
    value = (os.environ.get("EVENT_LOOP") or "uvloop").strip().lower()
    if value not in EVENT_LOOPS:
        raise ValueError(f"EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {value!r}")
    return value


def _cpu_affinity() -> str:
    """``CPU_AFFINITY``: ``auto`` (the default: the process keeps to one CPU chosen by its port,
    so its threads never hand the GIL across cores), ``off``, or the number of a CPU."""
    value = (os.environ.get("CPU_AFFINITY") or "auto").strip().lower()
    if value not in ("auto", "off") and not value.isdigit():
        raise ValueError(f"CPU_AFFINITY must be auto, off or a CPU number, not {value!r}")
    return value


def _log_format() -> str:
    return os.environ.get("LOG_FORMAT") or "text"


# prometheus_client's own variable: the directory where each process writes its metric values.
PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prometheus_multiproc_dir() -> str | None:
    return os.environ.get(PROMETHEUS_MULTIPROC_ENV) or None


# Set by tests/conftest.py for the test process and every server it starts; never in production.
TEST_SUITE_ENV = "DATINGTODAY_TEST_SUITE"


def require_test_suite(helper: str) -> None:
    """Refuse to run a ``..._for_testing`` helper outside the test suite (as Zulip's do)."""
    if os.environ.get(TEST_SUITE_ENV) != "1":
        raise RuntimeError(f"{helper} is for the test suite only ({TEST_SUITE_ENV}=1 is not set)")


def _env_float_or_none(name: str) -> float | None:
    raw = os.environ.get(name)
    return float(raw) if raw else None


def config_from_env(instance_path: str) -> dict[str, Any]:
    default_db = "sqlite:///" + os.path.join(instance_path, "datingtoday.sqlite3")
    database_url = normalise_database_url(os.environ.get("DATABASE_URL") or default_db)
    wsgi_threads = _env_int("WSGI_THREADS", 8)
    return {
        "DEV_MODE": _env_bool("DEV_MODE"),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or DEV_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": with_bounded_waits(
            database_url, engine_options(database_url, wsgi_threads + _env_int("NATIVE_THREADS", 4) + 2)
        ),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "REDIS_URL": os.environ.get("REDIS_URL") or EMBEDDED_REDIS_URL,
        # Redis behind Sentinel: "host:port,..." of the sentinels (empty: REDIS_URL's host is the
        # one Redis) and the master's name; REDIS_URL then gives only the database and password.
        "REDIS_SENTINELS": _env_list("REDIS_SENTINELS"),
        "REDIS_SENTINEL_MASTER": os.environ.get("REDIS_SENTINEL_MASTER") or DEFAULT_SENTINEL_MASTER,
        "REDIS_SENTINEL_PASSWORD": os.environ.get("REDIS_SENTINEL_PASSWORD") or "",
        "WSGI_THREADS": wsgi_threads,
        # Request signing.
        "SIGN_WINDOW_SECS": _env_int("SIGN_WINDOW_SECS", 300),
        # SMS sign-in.
        "SMS_GATEWAY": os.environ.get("SMS_GATEWAY", "log"),
        "SMS_ECHO_CODE": _env_bool("SMS_ECHO_CODE"),
        "SMS_CODE_TTL_SECS": _env_int("SMS_CODE_TTL_SECS", 300),
        "SMS_CODE_MAX_TRIES": _env_int("SMS_CODE_MAX_TRIES", 5),
        # (count, window seconds) pairs, all enforced.
        "SMS_PHONE_LIMITS": [(1, 60), (5, 3600), (10, 86400)],
        "SMS_IP_LIMITS": [(_env_int("SMS_IP_PER_HOUR", 30), 3600), (_env_int("SMS_IP_PER_DAY", 100), 86400)],
        # The cost cap against SMS pumping: countries numbers may belong to, sends per country and in all.
        "SMS_ALLOWED_REGIONS": _env_list("SMS_ALLOWED_REGIONS") or ["CN"],
        "SMS_COUNTRY_LIMITS": [
            (_env_int("SMS_COUNTRY_PER_HOUR", 2000), 3600),
            (_env_int("SMS_COUNTRY_PER_DAY", 20000), 86400),
        ],
        "SMS_GLOBAL_LIMITS": [
            (_env_int("SMS_GLOBAL_PER_HOUR", 5000), 3600),
            (_env_int("SMS_GLOBAL_PER_DAY", 50000), 86400),
        ],
        # Tokens.
        "TOKEN_TTL_SECS": _env_int("TOKEN_TTL_SECS", 7 * 24 * 3600),
        # HTTP.
        "MAX_CONTENT_LENGTH": _env_int("MAX_CONTENT_LENGTH", 8 * 1024 * 1024),
        "CORS_ORIGINS": _env_list("CORS_ORIGINS"),
        # Peers whose X-Real-IP / X-Forwarded-For are believed (nginx); others are known by their socket.
        "TRUSTED_PROXIES": _env_list("TRUSTED_PROXIES")
        if "TRUSTED_PROXIES" in os.environ
        else ["127.0.0.1", "::1"],
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER") or os.path.join(instance_path, "uploads"),
        # Photos: served at UPLOAD_URL_PATH by the app itself unless SERVE_UPLOADS=0 (nginx does it).
        "UPLOAD_URL_PATH": os.environ.get("UPLOAD_URL_PATH", "/uploads"),
        "SERVE_UPLOADS": _env_bool("SERVE_UPLOADS", True),
        "PHOTO_MAX_BYTES": _env_int("PHOTO_MAX_BYTES", 5 * 1024 * 1024),
        "PHOTO_MAX_PER_USER": _env_int("PHOTO_MAX_PER_USER", 9),
        "PHOTO_UPLOAD_LIMITS": [(30, 3600), (100, 86400)],
        # Hot list: popularity over a window, global ranking cached in Redis.
        "HOT_LIST_WINDOW_DAYS": _env_int("HOT_LIST_WINDOW_DAYS", 7),
        "HOT_LIST_SIZE": _env_int("HOT_LIST_SIZE", 500),
        "HOT_LIST_CACHE_SECS": _env_int("HOT_LIST_CACHE_SECS", 60),
        # VIP payments: the provider (only "fake" ships) and the secret its callbacks are signed with.
        "PAYMENT_PROVIDER": os.environ.get("PAYMENT_PROVIDER", "fake"),
        "PAYMENT_PROVIDER_SECRET": os.environ.get("PAYMENT_PROVIDER_SECRET") or DEV_PAYMENT_PROVIDER_SECRET,
        "ORDER_LIMITS": [(10, 600), (30, 86400)],
        # Reports of users, per reporter.
        "REPORT_LIMITS": [(5, 3600), (20, 86400)],
        # Block and unblock together, per user.
        "BLOCK_CHANGE_LIMITS": [(30, 3600), (100, 86400)],
        # Chat and nearby: long-poll wait, native handlers' own pool, media, limits per user.
        "LONGPOLL_TIMEOUT_SECS": float(os.environ.get("LONGPOLL_TIMEOUT_SECS") or 50),
        "LONGPOLL_MAX_PER_USER": _env_int("LONGPOLL_MAX_PER_USER", 4),
        # nginx's read timeouts, as deploy rendered them (unset: no nginx told us; wsgi_app/timeouts.py).
        "UPSTREAM_READ_TIMEOUT_SECS": _env_float_or_none("UPSTREAM_READ_TIMEOUT_SECS"),
        "UPSTREAM_POLL_READ_TIMEOUT_SECS": _env_float_or_none("UPSTREAM_POLL_READ_TIMEOUT_SECS"),
        "NATIVE_THREADS": _env_int("NATIVE_THREADS", 4),
        # None: 300 s on a real Redis, 0 (no cache) on the embedded default (services.nearby_cells).
        "NEARBY_CELL_CACHE_SECS": int(os.environ["NEARBY_CELL_CACHE_SECS"])
        if os.environ.get("NEARBY_CELL_CACHE_SECS")
        else None,
        "CHAT_MEDIA_MAX_BYTES": _env_int("CHAT_MEDIA_MAX_BYTES", 5 * 1024 * 1024),
        # Chat files: outside the public uploads, read through the app's check (nginx: X-Accel-Redirect).
        "CHAT_MEDIA_FOLDER": os.environ.get("CHAT_MEDIA_FOLDER") or os.path.join(instance_path, "chat-media"),
        "CHAT_MEDIA_ACCEL_PATH": os.environ.get("CHAT_MEDIA_ACCEL_PATH", ""),
        "CHAT_MEDIA_DAILY_QUOTA_BYTES": _env_int("CHAT_MEDIA_DAILY_QUOTA_BYTES", 100 * 1024 * 1024),
        "CHAT_SEND_LIMITS": [(60, 60), (2000, 86400)],
        # The event stream: durable events kept this long (a cursor older gets EVENTS_RESYNC).
        "EVENT_RETENTION_SECS": _env_int("EVENT_RETENTION_DAYS", 7) * 86400,
        # A typing indicator shows this long after the last "start" without a refresh.
        "TYPING_EXPIRES_SECS": _env_int("TYPING_EXPIRES_SECS", 15),
        # Likes per day (UTC): like + super-like together, and super-likes alone; VIP gets more.
        "LIKES_PER_DAY": _env_int("LIKES_PER_DAY", 50),
        "LIKES_PER_DAY_VIP": _env_int("LIKES_PER_DAY_VIP", 500),
        "SUPER_LIKES_PER_DAY": _env_int("SUPER_LIKES_PER_DAY", 1),
        "SUPER_LIKES_PER_DAY_VIP": _env_int("SUPER_LIKES_PER_DAY_VIP", 5),
        # (count, window seconds) pairs: moves per user, nearby pages per user.
        "LOCATION_CHANGE_LIMITS": [(20, 3600), (100, 86400)],
        "NEARBY_QUERY_LIMITS": [(30, 60), (600, 86400)],
        "JSON_AS_ASCII": False,
        # /metrics is answered only to these addresses or networks (comma-separated).
        "METRICS_ALLOWED_IPS": _env_list("METRICS_ALLOWED_IPS") or ["127.0.0.1/32", "::1/128"],
        # Logs: "text" lines or one JSON object per line (tornado_server.py reads the same variable).
        "LOG_FORMAT": _log_format(),
    }
