"""Per-process long-poll waiters, and the ONE Redis pub/sub listener that wakes them.

Each waiting poll registers a waiter (anything with ``wake(reason)``: a parked
:class:`~async_handlers.chat_poll.Poll`, or a :class:`FutureWaiter`) under its
user id in the process's :class:`WaiterRegistry`; its timeout is an entry in
the registry's one :class:`~async_handlers.timeout_wheel.TimeoutWheel`, never
a loop timer per poll. One :class:`WakeListener` task per process holds one
pub/sub subscription to the chat wake-up channel
(:mod:`wsgi_app.services.chat.events`) and wakes the waiters of the user
named in each wake-up; there is never a subscription per waiting client.

Waiting polls per user and process are capped (``LONGPOLL_MAX_PER_USER``): a
new poll beyond the cap answers the oldest one at once (``docs/api.md``), so
one token cannot hold thousands of connections here.

The channel carries three kinds of wake-up (:func:`wsgi_app.services.events.producer.parse_wake`):
a new message (its waiters are woken with ``None``: read now), another durable
event (``EVENT``: a chat poll checks its latest-message key first, an event
poll reads), and an ephemeral event (typing, presence) carried whole, handed to
the user's waiters that take one (:meth:`WaiterRegistry.deliver`: event polls).

Wake-ups only say "look again": polls read messages from the database by
cursor. So when the subscription breaks (Redis restarted, connection killed),
the listener reconnects with backoff and, once subscribed again, wakes every
waiter so each re-reads the database and picks up whatever was sent while
the subscription was down. Nothing is lost; at worst it arrives a little late.
Behind Redis Sentinel the listener also follows the primary (its
:class:`~async_handlers.primary_watch.PrimaryWatch`): a subscription left on a
demoted or cut-off primary is dropped and made again on the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

from async_handlers.primary_watch import PrimaryWatch
from async_handlers.timeout_wheel import TimeoutWheel
from wsgi_app import metrics
from wsgi_app.config import require_test_suite
from wsgi_app.redis_client import PrimaryLocator
from wsgi_app.services.chat.events import wake_channel
from wsgi_app.services.events.producer import parse_wake

log = logging.getLogger("datingtoday.waiters")

RECONNECT_BACKOFF_MIN_SECS = 0.1
RECONNECT_BACKOFF_MAX_SECS = 5.0
LISTENER_READ_TIMEOUT_SECS = 1.0
LISTENER_PING_INTERVAL_SECS = 15.0
SHUTDOWN_FLUSH_WAIT_SECS = 2.0
LISTENER_STOP_WAIT_SECS = 5.0
STOP_RETRY_SECS = 0.2
DEFAULT_MAX_POLLS_PER_USER = 4
TIMED_OUT = "timed-out"
EVICTED = "evicted"
GONE = "gone"
RECHECK = "recheck"
# A durable event other than a message was stored for the user (a chat poll checks its key first).
EVENT = "event"
# An ephemeral event was handed to the waiter (``push``): answer it.
EPHEMERAL = "ephemeral"


class Waiter(Protocol):
    """A waiting poll as the registry holds it: ``wake(reason)`` tells it why it should look
    (or answer) and returns False when it had already been told; ``due`` is the
    timeout wheel's bookkeeping (:mod:`async_handlers.timeout_wheel`)."""

    due: int

    def wake(self, reason: str | None) -> bool: ...


class FutureWaiter(asyncio.Future[str | None]):
    """A waiter that is a future (resolved with the reason): for code that awaits its wake-up."""

    due = 0

    def wake(self, reason: str | None) -> bool:
        if self.done():
            return False
        self.set_result(reason)
        return True


class WaiterRegistry:
    """This process's waiting polls, by user id (event-loop only).

    Per waiting poll it keeps the waiter itself (one entry in its user's dict)
    and, when the poll has a timeout, one entry in the process's ONE
    :class:`~async_handlers.timeout_wheel.TimeoutWheel` (no loop timer per
    poll); :meth:`discard` drops both. A waiter is woken with why:
    ``None`` (a wake-up: a message to this user was committed, read it),
    :data:`RECHECK` (the listener's catch-up after a reconnect: something may
    have been missed, look again), :data:`TIMED_OUT`, :data:`EVICTED` (the user
    opened more than ``max_per_user`` polls here: the oldest answers) or
    :data:`GONE` (the client disconnected). Waking does not unregister: the
    poll discards itself once it has answered (or parks again, still registered).
    """

    def __init__(self, max_per_user: int = DEFAULT_MAX_POLLS_PER_USER) -> None:
        # user id -> its waiters, oldest first (a dict as an ordered set).
        self._by_user: dict[int, dict[Waiter, None]] = {}
        self.timeouts: TimeoutWheel[Waiter] = TimeoutWheel(_time_out)
        self.max_per_user = max_per_user
        self.closing = False
        self.evicted = 0

    def add(self, user_id: int, timeout_secs: float | None = None) -> FutureWaiter:
        """A future resolved at the user's next wake-up (already resolved when closing),
        or with :data:`TIMED_OUT` after ``timeout_secs``."""
        future = FutureWaiter()
        self.park(user_id, future, timeout_secs)
        return future

    def park(self, user_id: int, waiter: Waiter, timeout_secs: float | None = None) -> None:
        """Register ``waiter`` (woken at once when closing); beyond ``max_per_user`` the
        user's oldest waiter is unregistered and woken with :data:`EVICTED`."""
        waiting = self._by_user.setdefault(user_id, {})
        if waiter in waiting:
            return
        while len(waiting) >= self.max_per_user:
            oldest = next(iter(waiting))
            self._forget(waiting, oldest)
            oldest.wake(EVICTED)
            self.evicted += 1
        waiting[waiter] = None
        if self.closing:
            waiter.wake(None)
        elif timeout_secs is not None:
            self.timeouts.add(waiter, asyncio.get_running_loop().time() + max(0.0, timeout_secs))

    def discard(self, user_id: int, waiter: Waiter) -> None:
        waiting = self._by_user.get(user_id)
        if waiting is None:
            return
        self._forget(waiting, waiter)
        if not waiting:
            del self._by_user[user_id]

    def _forget(self, waiting: dict[Waiter, None], waiter: Waiter) -> None:
        if waiting.pop(waiter, 0) is None:
            self.timeouts.remove(waiter)

    def wake_user(self, user_id: int, reason: str | None = None) -> int:
        woken = sum(waiter.wake(reason) for waiter in list(self._by_user.get(user_id, ())))
        metrics.WAKEUPS.inc(woken)
        return woken

    def deliver(self, user_id: int, event: dict[str, Any]) -> int:
        """Hand an ephemeral event to the user's waiters that take one (``push``: event polls)."""
        delivered = 0
        for waiter in list(self._by_user.get(user_id, ())):
            push = getattr(waiter, "push", None)
            if push is not None:
                delivered += bool(push(event))
        return delivered

    def wake_all(self, reason: str | None = None) -> int:
        return sum(self.wake_user(user_id, reason) for user_id in list(self._by_user))

    def close(self) -> int:
        """Shutting down: wake everyone now, and resolve later registrations at once."""
        self.closing = True
        return self.wake_all()

    def count(self) -> int:
        """How many polls are registered (a leak shows here)."""
        return sum(len(waiters) for waiters in self._by_user.values())

    def users(self) -> set[int]:
        return set(self._by_user)


def _time_out(waiter: Waiter) -> None:
    waiter.wake(TIMED_OUT)


class WakeListener:
    """One pub/sub subscription per process, reconnecting with backoff, following the primary."""

    def __init__(
        self, redis: aioredis.Redis, registry: WaiterRegistry, primary: PrimaryLocator | None = None
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.primary = PrimaryWatch(primary)
        self.channel = wake_channel(redis)
        self.subscribed = asyncio.Event()
        self.connect_count = 0
        self.wakeups_received = 0
        self._pubsub: Any = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="chat-wake-listener")
        return self._task

    async def stop(self) -> None:
        """Cancel the task, again if need be: redis-py can swallow a cancellation that lands
        while it subscribes, so the loops also check ``_stopping``."""
        self._stopping = True
        task, self._task = self._task, None
        deadline = time.monotonic() + LISTENER_STOP_WAIT_SECS
        while task is not None and not task.done() and time.monotonic() < deadline:
            task.cancel()
            await asyncio.wait([task], timeout=STOP_RETRY_SECS)
        if task is not None and not task.done():
            log.warning("wake listener did not stop within %.0fs", LISTENER_STOP_WAIT_SECS)

    async def run(self) -> None:
        backoff = RECONNECT_BACKOFF_MIN_SECS
        while not self._stopping:
            connects_before = self.connect_count
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # connection refused / reset / killed: reconnect
                log.warning("wake listener lost its subscription (%s); retrying in %.1fs", err, backoff)
            finally:
                self.subscribed.clear()
                await self._close_pubsub()
            if self.connect_count > connects_before:
                backoff = RECONNECT_BACKOFF_MIN_SECS  # it had worked: retry quickly
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX_SECS)

    async def _listen_once(self) -> None:
        self._pubsub = self.redis.pubsub()
        await self._pubsub.subscribe(self.channel)
        last_traffic = time.monotonic()
        while not self._stopping:
            await self.primary.check(self._pubsub.connection)  # raises PrimaryMoved: subscribe again
            message = await self._pubsub.get_message(timeout=LISTENER_READ_TIMEOUT_SECS)
            now = time.monotonic()
            if message is None:
                if now - last_traffic >= LISTENER_PING_INTERVAL_SECS:
                    await self._pubsub.ping()  # a dead connection fails here
                    last_traffic = now
                continue
            last_traffic = now
            kind = message.get("type")
            if kind == "subscribe":
                self.connect_count += 1
                self.primary.note(self._pubsub.connection)
                self.subscribed.set()
                # Anything sent while we were not subscribed: let every waiter look again.
                woken = self.registry.wake_all(RECHECK)
                log.info("wake listener subscribed to %s (woke %d waiters)", self.channel, woken)
            elif kind == "message":
                self.wakeups_received += 1
                wake = parse_wake(message.get("data") or "")
                if wake is None:
                    continue
                if wake.ephemeral is not None:
                    self.registry.deliver(wake.user_id, wake.ephemeral)
                else:
                    self.registry.wake_user(wake.user_id, None if wake.message else EVENT)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is None:
            return
        try:
            await pubsub.aclose()
        except Exception:
            log.debug("closing the pub/sub connection failed", exc_info=True)

    async def drop_connection_for_testing(self) -> None:
        """Break the live subscription as a Redis restart would (the loop must recover)."""
        require_test_suite("drop_connection_for_testing")
        pubsub = self._pubsub
        if pubsub is not None and pubsub.connection is not None:
            await pubsub.connection.disconnect()


async def drain_waiters(registry: WaiterRegistry, timeout_secs: float = SHUTDOWN_FLUSH_WAIT_SECS) -> None:
    """Wake every waiter and give their handlers a moment to write the answers."""
    registry.close()
    deadline = time.monotonic() + timeout_secs
    while registry.count() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
