"""Bounded, cheap connections to MySQL/MariaDB, for every engine that uses PyMySQL.

Importing this module (``wsgi_app.config`` does) installs one SQLAlchemy
``do_connect`` listener that adds to each PyMySQL connection attempt:

- ``connect_timeout`` (``DB_CONNECT_TIMEOUT_SECS``): an unreachable database is
  answered 503 (520) fast instead of holding a worker;
- ``read_timeout``/``write_timeout`` (:data:`wsgi_app.timeouts.DB_READ_TIMEOUT_SECS`): a
  server that stops answering (a hung host, a lost link) is a 520 in bounded
  time, never a worker held until nginx gives up;
- ``init_command``: the session's lock waits (``innodb_lock_wait_timeout`` for
  rows, ``lock_wait_timeout`` for metadata locks such as a
  ``FLUSH TABLES WITH READ LOCK``: MariaDB's default is a day) and, on MariaDB,
  ``max_statement_time``, all from :mod:`wsgi_app.timeouts`: a write that meets a
  lock is answered 503 ``database_busy`` in seconds, below nginx's read timeout;
- ``ssl_disabled`` on loopback: PyMySQL tries TLS by default and builds a TLS
  context (loading the CA bundle) for every connection, 250-450 ms of CPU here
  (cProfile), paid again on every reconnect during an outage. On loopback TLS
  protects nothing; other hosts keep PyMySQL's default.

A listener rather than ``connect_args``: it only touches PyMySQL connections,
whatever URL an engine was finally given. Invariant: values set explicitly by
the caller are kept.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from wsgi_app import timeouts

DB_CONNECT_TIMEOUT_SECS = 2
DB_POOL_TIMEOUT_SECS = timeouts.DB_POOL_WAIT_SECS
# ``/*M!...*/``: executed by MariaDB only (MySQL has max_execution_time, for SELECTs).
SESSION_BOUNDS_SQL = (
    f"SET SESSION innodb_lock_wait_timeout = {timeouts.DB_LOCK_WAIT_SECS}, "
    f"lock_wait_timeout = {timeouts.DB_LOCK_WAIT_SECS}"
    f" /*M!100108 , max_statement_time = {timeouts.DB_STATEMENT_SECS:g} */"
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@event.listens_for(Engine, "do_connect")
def bounded_pymysql_connect(dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    if getattr(dialect, "driver", "") != "pymysql":
        return
    cparams.setdefault("connect_timeout", DB_CONNECT_TIMEOUT_SECS)
    cparams.setdefault("read_timeout", timeouts.DB_READ_TIMEOUT_SECS)
    cparams.setdefault("write_timeout", timeouts.DB_READ_TIMEOUT_SECS)
    cparams.setdefault("init_command", SESSION_BOUNDS_SQL)
    if cparams.get("unix_socket") or (cparams.get("host") or "localhost") in LOOPBACK_HOSTS:
        cparams.setdefault("ssl_disabled", True)
