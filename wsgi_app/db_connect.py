"""Bounded, cheap connections to MySQL/MariaDB, for every engine that uses PyMySQL.

Importing this module (``wsgi_app.config`` does) installs one SQLAlchemy
``do_connect`` listener that adds to each PyMySQL connection attempt:

- ``connect_timeout`` (``DB_CONNECT_TIMEOUT_SECS``): an unreachable database is
  answered 503 (520) fast instead of holding a worker;
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

DB_CONNECT_TIMEOUT_SECS = 2
DB_POOL_TIMEOUT_SECS = 2
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@event.listens_for(Engine, "do_connect")
def bounded_pymysql_connect(dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    if getattr(dialect, "driver", "") != "pymysql":
        return
    cparams.setdefault("connect_timeout", DB_CONNECT_TIMEOUT_SECS)
    if cparams.get("unix_socket") or (cparams.get("host") or "localhost") in LOOPBACK_HOSTS:
        cparams.setdefault("ssl_disabled", True)
