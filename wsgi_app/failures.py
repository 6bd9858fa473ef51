"""The one mapping from a dependency failure to the error table, for every side.

Flask's error handlers, the native handlers' ``write_error`` and the WSGI
container's last-resort handler all call :func:`failure_spec`, so a failure is
answered the same wherever it surfaces. Framework-free: it looks only at the
exception (SQLAlchemy/PyMySQL and redis-py classes, MySQL error numbers).

Invariants:
- 525 ``database_busy``: a deadlock that outlived the retry of
  :mod:`wsgi_app.transactions`, a lock wait or a statement that outlived its bound
  (:mod:`wsgi_app.timeouts`);
- 520 ``database_unavailable``: only when the database cannot be reached (connect
  refused, gone away, lost connection, an invalidated or closed connection, no
  pooled connection within the bounded wait);
- 521 ``redis_unavailable``: a Redis connection or timeout error (sync or asyncio);
- anything else is a bug: 500 ``internal_error``, logged with its traceback by the caller.
"""

from __future__ import annotations

import redis
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from wsgi_app import errors
from wsgi_app.errors import ErrorSpec

DEADLOCK = 1213
LOCK_WAIT_TIMEOUT = 1205
STATEMENT_TIMEOUT = 1969  # MariaDB's max_statement_time (wsgi_app.timeouts)
EXECUTION_TIMEOUT = 3024  # MySQL's max_execution_time
RETRYABLE_ERRORS = {DEADLOCK: "deadlock", LOCK_WAIT_TIMEOUT: "lock wait timeout"}
# A lock or statement that outlived its bound (wsgi_app.timeouts): busy, not down.
BUSY_ERRORS = frozenset({*RETRYABLE_ERRORS, STATEMENT_TIMEOUT, EXECUTION_TIMEOUT})
# Client-side connection failures and server refusals that mean "cannot reach the database":
# can't connect, unknown host, gone away, lost connection, too many connections, access denied.
UNREACHABLE_ERRORS = frozenset({2002, 2003, 2005, 2006, 2013, 2055, 1040, 1045, 1129, 1130})


def mysql_error_code(error: BaseException) -> int | None:
    """The MySQL/MariaDB error number behind a (SQLAlchemy-wrapped) driver error, if any."""
    original = getattr(error, "orig", error)
    args = getattr(original, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def database_unreachable(error: BaseException) -> bool:
    code = mysql_error_code(error)
    return (
        code in UNREACHABLE_ERRORS
        or isinstance(error, PoolTimeoutError | InterfaceError)  # no connection in time / a closed one
        or (isinstance(error, DBAPIError) and error.connection_invalidated)
        or (isinstance(error, OperationalError) and not code)  # e.g. SQLite's "unable to open"
    )


def failure_spec(error: BaseException) -> ErrorSpec:
    """The error-table entry for an exception that is not an ``ApiError``."""
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return errors.REDIS_UNAVAILABLE
    if mysql_error_code(error) in BUSY_ERRORS and isinstance(error, DBAPIError):
        return errors.DATABASE_BUSY
    if database_unreachable(error):
        return errors.DATABASE_UNAVAILABLE
    return errors.INTERNAL_ERROR


def describe_failure(spec: ErrorSpec, error: BaseException) -> str:
    """The one log line of a handled dependency failure, naming the dependency (no traceback):
    ``redis_unavailable: Redis ConnectionError: ...`` or ``database_busy: MySQL error 1205 ...``."""
    if isinstance(error, redis.exceptions.RedisError):
        return f"{spec.name}: Redis {type(error).__name__}: {error}"
    detail = getattr(error, "orig", None) or error
    text = str(detail).splitlines()[0][:200] if str(detail) else ""
    code = mysql_error_code(error)
    return f"{spec.name}: database {type(error).__name__} (MySQL error {code}) {text}".rstrip()
