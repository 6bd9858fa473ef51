"""The one way to write: :func:`write` runs a unit of work as one transaction, with retries.

    message_id = transactions.write(lambda: store_message(...))

``work`` does its reads and writes through ``db.session`` and returns a
value; :func:`write` commits (``work`` never commits itself) and returns that
value. When MariaDB aborts the transaction for a deadlock (error 1213) or a
lock wait timeout (1205) the session is rolled back and ``work`` runs again
from the start, after a short randomised backoff, up to
:data:`MAX_ATTEMPTS` times, but a lock wait timeout only while the write has
waited less than one lock wait in all (``wsgi_app.timeouts.DB_LOCK_WAIT_SECS``):
a lock held longer (a ``FLUSH TABLES WITH READ LOCK``, a long transaction) is
answered 503 ``database_busy`` after one bounded wait, not after five.
``work`` must therefore only touch the database (or be safe to repeat): files,
Redis and other side effects belong before or after it. Writes that must happen
once (a chat send) are made idempotent by a unique key, so a repeat finds the first.

:func:`write_statement` is the one-statement form: the statement commits by
itself (autocommit: no ``BEGIN``/``COMMIT`` round trips; one statement is
atomic on its own) and is retried the same way.

A :func:`write` inside another joins it: the outer one commits and retries.

:func:`on_commit` (only inside :func:`write`) queues a callback to run once the
transaction has committed (as Django's ``transaction.on_commit``): the event
stream's wake-ups go out only for what is stored. A rollback (a deadlock retry
included) drops the callbacks queued by the attempt; a failing callback is
logged and never undoes the commit.
Every retry, and a give-up, is logged with the MySQL error number.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Executable
from sqlalchemy.exc import DBAPIError

from wsgi_app import timeouts
from wsgi_app.database import SINGLE_STATEMENT_OPTION
from wsgi_app.extensions import db
from wsgi_app.failures import LOCK_WAIT_TIMEOUT, RETRYABLE_ERRORS, mysql_error_code

log = logging.getLogger("datingtoday.transactions")
T = TypeVar("T")

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECS = 0.01
BACKOFF_MAX_SECS = 0.2
_ACTIVE_KEY = "datingtoday.write_active"
_ON_COMMIT_KEY = "datingtoday.on_commit"


def on_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` after the enclosing :func:`write` commits (never if it rolls back)."""
    info = db.session.info
    if not info.get(_ACTIVE_KEY):
        raise RuntimeError("on_commit outside transactions.write")
    info.setdefault(_ON_COMMIT_KEY, []).append(callback)


def _run_on_commit(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("after-commit callback failed (the transaction is committed)")


def is_retryable(error: BaseException) -> bool:
    return mysql_error_code(error) in RETRYABLE_ERRORS


def backoff_secs(attempt: int) -> float:
    """Full-jitter exponential backoff before attempt ``attempt + 1``."""
    return random.uniform(0, min(BACKOFF_MAX_SECS, BACKOFF_BASE_SECS * 2**attempt))


def _begin_sqlite_writer() -> None:
    """SQLite: take the write lock at the start, so reads and writes of ``work`` are one unit
    (MariaDB gets that from locking reads; its transaction opens at the first of them)."""
    if db.session.get_bind().dialect.name != "sqlite":
        return
    connection = db.session.connection()
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def write(work: Callable[[], T], *, what: str = "transaction") -> T:
    """Run ``work`` in one transaction and commit it, retrying deadlocks and lock wait timeouts."""
    session = db.session
    if session.info.get(_ACTIVE_KEY):
        return work()  # joins the enclosing write
    attempt = 1
    started = time.monotonic()
    while True:
        session.info[_ACTIVE_KEY] = True
        try:
            _begin_sqlite_writer()
            result = work()
            session.commit()
            callbacks = session.info.pop(_ON_COMMIT_KEY, [])
            session.info.pop(_ACTIVE_KEY, None)  # a callback's own write is a new transaction
            _run_on_commit(callbacks)
            return result
        except DBAPIError as error:
            session.rollback()
            session.info.pop(_ON_COMMIT_KEY, None)
            code = mysql_error_code(error)
            if code not in RETRYABLE_ERRORS:
                raise
            if code == LOCK_WAIT_TIMEOUT and time.monotonic() - started >= timeouts.DB_LOCK_WAIT_SECS:
                raise  # answered 525 (one log line, by the error handler)
            if attempt >= MAX_ATTEMPTS:
                log.error(
                    "%s: MySQL error %d (%s), giving up after %d attempts",
                    what,
                    code,
                    RETRYABLE_ERRORS[code],
                    attempt,
                )
                raise
            delay = backoff_secs(attempt)
            log.warning(
                "%s: MySQL error %d (%s), retry %d of %d in %.0f ms",
                what,
                code,
                RETRYABLE_ERRORS[code],
                attempt,
                MAX_ATTEMPTS - 1,
                delay * 1000,
            )
            time.sleep(delay)
            attempt += 1
        except BaseException:
            session.rollback()
            session.info.pop(_ON_COMMIT_KEY, None)
            raise
        finally:
            session.info.pop(_ACTIVE_KEY, None)


def single_statement(statement: Executable) -> Executable:
    """``statement`` marked to commit by itself (a statement built once can be marked once)."""
    if statement.get_execution_options().get(SINGLE_STATEMENT_OPTION):
        return statement
    return statement.execution_options(**{SINGLE_STATEMENT_OPTION: True})


def write_statement(
    statement: Executable, params: dict[str, Any] | None = None, *, what: str = "statement"
) -> CursorResult[Any]:
    """Execute one write statement, committed by itself, retried like :func:`write`;
    returns its result. Inside an open transaction it simply joins it."""
    single = single_statement(statement)
    # A write statement's result is a CursorResult (rowcount, inserted_primary_key).
    return cast(CursorResult[Any], write(lambda: db.session.execute(single, params), what=what))
