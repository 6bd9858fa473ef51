"""The one timeout rule: every wait of a request is bounded below nginx's read timeouts.

nginx gives an ordinary request ``UPSTREAM_READ_TIMEOUT_SECS`` and a long-poll
``UPSTREAM_POLL_READ_TIMEOUT_SECS`` (both rendered into nginx.conf from these
values by ``deploy``; the poll's is ``LONGPOLL_TIMEOUT_SECS`` +
:data:`POLL_READ_MARGIN_SECS` unless pinned). A request that outlives them is cut
by nginx and counted as a failure of a healthy process, so the process must
answer first, with the envelope of whatever it waited for:

- a row or metadata lock (``innodb_lock_wait_timeout``, ``lock_wait_timeout``):
  :data:`DB_LOCK_WAIT_SECS`, then 503 ``database_busy`` (525);
- one statement (MariaDB ``max_statement_time``): :data:`DB_STATEMENT_SECS`, 525;
- a reply from the database server (PyMySQL ``read_timeout``):
  :data:`DB_READ_TIMEOUT_SECS`, 503 ``database_unavailable`` (520);
- a pooled database connection: :data:`DB_POOL_WAIT_SECS`, 520;
- a Redis reply, a pooled Redis connection: :data:`REDIS_REPLY_TIMEOUT_SECS`
  (each of :data:`REDIS_ATTEMPTS`), :data:`REDIS_POOL_WAIT_SECS`, 503
  ``redis_unavailable`` (521);
- a free worker thread: the admission budget (``async_handlers/admission.py``),
  503 ``overloaded`` (526) at once.

:func:`timeout_problems` is the check a process runs at start: a configuration
nginx would cut (a poll longer than nginx waits for it, an ordinary request's
worst wait longer than nginx's read timeout) is refused with one line.
Invariant: these constants are the only source of these bounds (the database
session settings, the Redis clients and the rendered nginx.conf read them here).
"""

from __future__ import annotations

DB_LOCK_WAIT_SECS = 2
DB_STATEMENT_SECS = 3.0
DB_READ_TIMEOUT_SECS = 4
DB_POOL_WAIT_SECS = 2
REDIS_REPLY_TIMEOUT_SECS = 1.0
REDIS_POOL_WAIT_SECS = 1.0
REDIS_ATTEMPTS = 3  # wsgi_app.redis_client.REDIS_RETRIES + 1
# nginx waits this much longer for a poll than the poll waits for a message.
POLL_READ_MARGIN_SECS = 10.0
MIN_POLL_READ_MARGIN_SECS = 5.0
DEFAULT_UPSTREAM_READ_TIMEOUT_SECS = 15.0


def poll_read_timeout_secs(longpoll_timeout_secs: float) -> float:
    """nginx's read timeout for the long-poll location, from the poll's own timeout."""
    return longpoll_timeout_secs + POLL_READ_MARGIN_SECS


def worst_request_wait_secs() -> float:
    """The longest an ordinary request waits on one stalled dependency of each kind before it is
    answered: a pooled database connection, then one statement cut by the read timeout, then a
    pooled Redis connection and a command with its retries."""
    redis_secs = REDIS_POOL_WAIT_SECS + REDIS_ATTEMPTS * REDIS_REPLY_TIMEOUT_SECS
    return DB_POOL_WAIT_SECS + max(DB_READ_TIMEOUT_SECS, DB_STATEMENT_SECS, DB_LOCK_WAIT_SECS) + redis_secs


def timeout_problems(
    longpoll_timeout_secs: float,
    upstream_poll_read_timeout_secs: float | None,
    upstream_read_timeout_secs: float | None,
) -> list[str]:
    """What nginx would cut, as one sentence each (empty: the configuration is sound).
    ``None``: no nginx in front told us its timeout (a process run by hand)."""
    problems = []
    if upstream_poll_read_timeout_secs is not None:
        needed = longpoll_timeout_secs + MIN_POLL_READ_MARGIN_SECS
        if needed > upstream_poll_read_timeout_secs:
            problems.append(
                f"LONGPOLL_TIMEOUT_SECS={longpoll_timeout_secs:g} needs nginx's poll read timeout "
                f"(UPSTREAM_POLL_READ_TIMEOUT_SECS={upstream_poll_read_timeout_secs:g}) to be at least "
                f"{needed:g}: nginx would cut every waiting poll and mark the processes failed"
            )
    if upstream_read_timeout_secs is not None and worst_request_wait_secs() >= upstream_read_timeout_secs:
        problems.append(
            f"UPSTREAM_READ_TIMEOUT_SECS={upstream_read_timeout_secs:g} is below a request's worst "
            f"bounded wait ({worst_request_wait_secs():g} s): nginx would cut requests the process "
            "is about to answer"
        )
    return problems
