"""Following a Sentinel-managed Redis primary from the wake listener's one pub/sub connection.

A pub/sub connection is never idle, so redis-py never drops it when the
primary moves: it could sit on the old primary (now a replica, or cut off) and
never hear another wake-up. The listener (:class:`async_handlers.waiters.WakeListener`)
keeps one :class:`PrimaryWatch`: every ``PRIMARY_CHECK_INTERVAL_SECS`` it asks
Sentinel, through a ``primary`` locator (:func:`wsgi_app.redis_client.primary_locator`),
where the primary is; when the subscription is elsewhere :meth:`PrimaryWatch.check`
raises :class:`PrimaryMoved` and the listener subscribes again (on the new
primary), which wakes every waiter once. A locator that fails (no primary named
during a failover, sentinels unreachable) leaves a live subscription alone.

Invariants: a move is reported once, whether the check found it or a reconnect
landed at a new address (:meth:`PrimaryWatch.note`); on each move the
latest-message keys (:func:`~wsgi_app.services.chat.events.latest_message_key`)
are untrusted for their TTL (the new primary may hold them stale-low: a raise
the old primary acknowledged and never replicated, or a failed announce whose
clean-up failed too), so :meth:`PrimaryWatch.trusts_latest_keys` is False and
polls read the database; and the ``on_primary_moved`` hooks run as tasks (the
process voids the Redis caches a lost write could leave stale:
:func:`async_handlers.start_native_services`), their errors logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from wsgi_app.redis_client import PrimaryLocator
from wsgi_app.services.chat.events import LATEST_MESSAGE_TTL_SECS

log = logging.getLogger("datingtoday.waiters")

PRIMARY_CHECK_INTERVAL_SECS = 1.0
Address = tuple[str, int]
Hook = Callable[[], Awaitable[None]]


class PrimaryMoved(Exception):
    """The subscription is not on the primary Sentinel names: subscribe again."""


class PrimaryWatch:
    """Where the listener is subscribed, and whether that is still the primary (event loop only)."""

    def __init__(self, locate: PrimaryLocator | None) -> None:
        self.locate = locate
        self.moves = 0
        self.subscribed_to: Address | None = None
        self.on_primary_moved: list[Hook] = []
        self._reported: Address | None = None  # a move the check already reported
        self._last_check = 0.0
        self._untrusted_until = 0.0  # time.monotonic()
        self._hook_tasks: set[asyncio.Task[None]] = set()

    async def check(self, connection: Any) -> None:
        """At most every ``PRIMARY_CHECK_INTERVAL_SECS``: raise :class:`PrimaryMoved` when the
        subscription's connection is not where Sentinel names the primary."""
        now = time.monotonic()
        if self.locate is None or connection is None or now - self._last_check < PRIMARY_CHECK_INTERVAL_SECS:
            return
        self._last_check = now
        try:
            primary = await self.locate()
        except Exception as err:  # no primary named right now: keep what works, ask again later
            log.debug("wake listener could not ask Sentinel for the primary: %s", err)
            return
        subscribed_to = (str(connection.host), int(connection.port))
        if subscribed_to != primary:
            self._moved(subscribed_to, primary)
            self._reported = primary
            raise PrimaryMoved(f"subscribed on {subscribed_to}, the primary is {primary}")

    def note(self, connection: Any) -> None:
        """On each (re)subscription: a new address not already reported by the check is a move
        too (the old primary died and the reconnect asked Sentinel)."""
        if connection is None or not getattr(connection, "host", None):
            return  # the embedded stand-in has no address
        address = (str(connection.host), int(connection.port))
        if self.subscribed_to is not None and address not in (self.subscribed_to, self._reported):
            self._moved(self.subscribed_to, address)
        self.subscribed_to, self._reported = address, None
        self._last_check = time.monotonic()

    def trusts_latest_keys(self) -> bool:
        """False for ``LATEST_MESSAGE_TTL_SECS`` after a move."""
        return time.monotonic() >= self._untrusted_until

    def _moved(self, old: Address | None, new: Address) -> None:
        self.moves += 1
        self._untrusted_until = time.monotonic() + LATEST_MESSAGE_TTL_SECS
        log.warning("wake listener: the Redis primary moved %s -> %s", old, new)
        for hook in self.on_primary_moved:
            task = asyncio.get_running_loop().create_task(_run_hook(hook))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)


async def _run_hook(hook: Hook) -> None:
    try:
        await hook()
    except Exception as err:
        log.warning("a primary-moved hook failed: %s", err)
