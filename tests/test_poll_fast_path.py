"""The long-poll's fast path: on-loop auth, the latest-message key, the per-user cap, timers.

A parked poll whose caller is cached and whose cursor equals the user's latest
message id has touched no worker thread; a missing key means "read the
database"; more polls than the cap answer the oldest; timeouts fire from one
loop timer per poll and leave nothing behind.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from async_handlers.waiters import EVICTED, TIMED_OUT, WaiterRegistry
from tests.chat_support import send_text, sent_id
from tests.conftest import LiveServer
from tests.helpers import ApiClient, Reply, SignedInUser, wait_until
from tests.test_chat_poll import WAKE_TIMEOUT_SECS, poll, waiting
from wsgi_app.extensions import redis_client
from wsgi_app.services.chat.events import announce_new_message, latest_message_key


class CountingExecutor(Executor):
    """Counts the jobs the native side hands to its worker pool."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.jobs = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.jobs += 1
        return self.inner.submit(fn, *args, **kwargs)


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


@pytest.fixture
def counting(live_server: LiveServer) -> CountingExecutor:
    context = live_server.service.context
    context.executor = CountingExecutor(context.executor)
    return context.executor


def test_a_poll_at_the_latest_cursor_parks_without_a_thread_and_wakes_on_send(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, pool, counting: CountingExecutor
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice, bob = auth.login(), auth.login()
    first = sent_id(send_text(live_api, bob, alice, "one"))  # the send raises alice's key
    with app.app_context():
        assert redis_client().get(latest_message_key(alice.user_id)) == str(first)
    assert poll(live_api, alice, 0).data["cursor"] == first  # warms the token cache
    counting.jobs = 0
    waiting_poll: Future[Reply] = pool.submit(poll, live_api, alice, first)
    assert wait_until(lambda: waiting(live_server) == 1), "the poll did not park"
    assert counting.jobs == 0, "a poll with nothing to read used a worker thread"
    second = sent_id(send_text(live_api, bob, alice, "two"))
    reply = waiting_poll.result(WAKE_TIMEOUT_SECS)
    assert [m["msg_id"] for m in reply.data["list"]] == [second]
    assert counting.jobs == 1  # the one database read that found "two"


def test_a_missing_key_means_unknown_and_the_poll_reads_the_database(
    live_api: ApiClient, app: Flask, alice: SignedInUser, bob: SignedInUser
) -> None:
    msg_id = sent_id(send_text(live_api, bob, alice, "sent before Redis lost its keys"))
    with app.app_context():
        redis_client().delete(latest_message_key(alice.user_id))
    reply = poll(live_api, alice, 0)
    assert [m["msg_id"] for m in reply.data["list"]] == [msg_id]


def test_the_key_is_raise_only(app: Flask) -> None:
    with app.app_context():
        for value in (5, 9, 7):
            announce_new_message(42, value)
        assert redis_client().get(latest_message_key(42)) == "9"


def test_polls_beyond_the_per_user_cap_answer_the_oldest(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, pool
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    live_server.service.context.waiters.max_per_user = 2
    alice, bob = auth.login(), auth.login()
    cursor = poll(live_api, alice, None).data["cursor"]
    oldest = pool.submit(poll, live_api, alice, cursor)
    assert wait_until(lambda: waiting(live_server) == 1)
    middle = pool.submit(poll, live_api, alice, cursor)
    assert wait_until(lambda: waiting(live_server) == 2)
    newest = pool.submit(poll, live_api, alice, cursor)
    evicted = oldest.result(WAKE_TIMEOUT_SECS)
    assert evicted.status == 200 and evicted.data == {"list": [], "cursor": cursor, "has_more": False}
    assert wait_until(lambda: waiting(live_server) == 2)
    msg_id = sent_id(send_text(live_api, bob, alice, "to the two newest"))
    for still_waiting in (middle, newest):
        assert [m["msg_id"] for m in still_waiting.result(WAKE_TIMEOUT_SECS).data["list"]] == [msg_id]
    assert wait_until(lambda: waiting(live_server) == 0)


def test_registry_timer_eviction_and_cleanup() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        registry = WaiterRegistry(max_per_user=2)
        timed = registry.add(1, timeout_secs=0.01)
        assert await asyncio.wait_for(timed, 5) == TIMED_OUT
        registry.discard(1, timed)
        first, second = registry.add(2, 30), registry.add(2, 30)
        third = registry.add(2, 30)
        assert first.result() == EVICTED and not second.done() and registry.count() == 2
        for future in (first, second, third):
            registry.discard(2, future)
        assert registry.count() == 0
        # Discarded polls leave no live timer behind.
        live = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert live == []

    asyncio.run(scenario())
