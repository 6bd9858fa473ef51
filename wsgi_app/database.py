"""How the app talks to its database: autocommit reads, a transaction from the first write.

Connections run in autocommit mode (``isolation_level="AUTOCOMMIT"``, set in
:func:`wsgi_app.config.engine_options`), so a request that only reads costs
exactly its SELECTs: no COMMIT or ROLLBACK round trip at session teardown.
Writes keep their atomicity because a transaction is opened on the server
right before the first write or locking read of a session transaction
(``BEGIN``; ``BEGIN IMMEDIATE`` on SQLite) and ends with the session's
``commit()`` or ``rollback()``: everything a session writes between two
commits is one transaction, as before (a statement marked by
``transactions.write_statement`` commits by itself instead). Reads that come before the first
write run outside it, each on a fresh snapshot (they never locked anything).

Invariants:

* COMMIT and ROLLBACK reach MariaDB only when the server says a transaction
  is open (the ``SERVER_STATUS_IN_TRANS`` flag of its last OK packet); a
  closed or unknown state always sends them.
* No ``pool_pre_ping``: a pooled connection that died (server restart,
  ``KILL``, idle timeout) is reconnected once, transparently, when the first
  thing sent on it is a read or a ``BEGIN`` outside a transaction, which is
  safe to resend because the server did nothing with it. A write outside a
  transaction is preceded by a zero-timeout ``select``: an idle connection the
  server already closed is readable, and is reconnected before the write is
  sent (no round trip). Anything else fails as before (the transaction retry
  of :mod:`wsgi_app.transactions` takes over).
"""

from __future__ import annotations

import logging
import select
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from wsgi_app.db_connect import install_connect_listeners
from wsgi_app.private_apis import pymysql_server_status, pymysql_socket

log = logging.getLogger("datingtoday.database")

# MySQL protocol server status flags (include/mysql_com.h).
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002
# Client-side errors of a connection that is gone: server has gone away, lost connection.
STALE_CONNECTION_ERRORS = frozenset({2006, 2013})
_WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_LOCKING_CLAUSES = (" FOR UPDATE", " FOR SHARE", " LOCK IN SHARE MODE")
# Execution option of a write that commits by itself (transactions.write_statement): no BEGIN.
SINGLE_STATEMENT_OPTION = "datingtoday_single_statement"


def is_write(statement: str) -> bool:
    """True for DML and locking reads: the statements that need a transaction."""
    head = statement.lstrip()[:7].upper()
    if head.startswith(_WRITE_PREFIXES):
        return True
    return head.startswith("SELECT") and any(clause in statement for clause in _LOCKING_CLAUSES)


def mysql_in_transaction(dbapi_connection: Any) -> bool:
    """Whether MariaDB has a transaction open on this (PyMySQL) connection; True when unsure."""
    status = pymysql_server_status(dbapi_connection)
    if status is None or not status & SERVER_STATUS_AUTOCOMMIT:
        return True
    return bool(status & SERVER_STATUS_IN_TRANS)


def _in_transaction(dialect_name: str, dbapi_connection: Any) -> bool:
    if dialect_name == "sqlite":
        return bool(dbapi_connection.in_transaction)
    return mysql_in_transaction(dbapi_connection)


def _resend_safe(statement: str, dbapi_connection: Any) -> bool:
    """A statement the server cannot have acted on if the connection was already dead."""
    head = statement.lstrip()[:6].upper()
    return (
        head in ("SELECT", "BEGIN") and not is_write(statement) and not mysql_in_transaction(dbapi_connection)
    )


def closed_by_server(dbapi_connection: Any) -> bool:
    """An idle PyMySQL connection the server closed (``KILL``, idle timeout, restart).

    The server never speaks first on an idle connection, so a socket that is
    readable before we send (its FIN or error packet arrived) is dead. One
    zero-timeout ``select``, no round trip."""
    sock = pymysql_socket(dbapi_connection)
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def execute_reconnecting(cursor: Any, statement: str, parameters: Any) -> None:
    """``cursor.execute`` on PyMySQL, reconnecting once if the pooled connection was dead."""
    import pymysql

    connection = cursor.connection
    safe = _resend_safe(statement, connection)
    if not safe and not mysql_in_transaction(connection) and closed_by_server(connection):
        # A write would be lost with the connection and cannot be resent: reconnect before it.
        log.warning("database connection was closed by the server; reconnecting once before a write")
        connection.connect()
    try:
        cursor.execute(statement, parameters)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if not safe or code not in STALE_CONNECTION_ERRORS:
            raise
        log.warning("database connection was dead (MySQL error %s); reconnecting once", code)
        connection.connect()
        cursor.execute(statement, parameters)


def begin_before_write(dialect_name: str, cursor: Any, statement: str) -> None:
    """Open the server transaction before a write or locking read outside one (the one
    place both SQLAlchemy's statements and :mod:`wsgi_app.raw_statements` go through)."""
    if not is_write(statement):
        return
    dbapi_connection = cursor.connection
    if _in_transaction(dialect_name, dbapi_connection):
        return
    if dialect_name == "sqlite":
        cursor.execute("BEGIN IMMEDIATE")
    else:
        execute_reconnecting(cursor, "BEGIN", None)


def _begin_before_first_write(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if context is not None and context.execution_options.get(SINGLE_STATEMENT_OPTION):
        return  # transactions.write_statement: one statement commits by itself
    begin_before_write(conn.dialect.name, cursor, statement)


def tune_engine(engine: Engine) -> None:
    """Install the behaviour described in the module docstring on ``engine`` (once)."""
    if event.contains(engine, "before_cursor_execute", _begin_before_first_write):
        return
    install_connect_listeners(engine)
    event.listen(engine, "before_cursor_execute", _begin_before_first_write)
    dialect = engine.dialect
    if dialect.name not in ("mysql", "mariadb"):
        return
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        if mysql_in_transaction(dbapi_connection):
            commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        if mysql_in_transaction(dbapi_connection):
            rollback(dbapi_connection)

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        execute_reconnecting(cursor, statement, parameters)

    def do_execute_no_params(cursor: Any, statement: str, context: Any = None) -> None:
        execute_reconnecting(cursor, statement, None)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    dialect.do_execute = do_execute  # type: ignore[method-assign]
    dialect.do_execute_no_params = do_execute_no_params  # type: ignore[method-assign]
