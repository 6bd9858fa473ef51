"""Redis behind Sentinel, through real failovers: every client of the product follows the primary.

The test starts its own primary, two replicas and three sentinels on free
loopback ports (:class:`tests.integration.services.SentinelGroup`, shared by
this module; a killed node comes back as a replica before the next test) and
SIGKILLs the primary: the sync client, ``redis.asyncio``, the pub/sub listener
and a real server process's waiting poll must all carry on with the new primary.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio.sentinel

from async_handlers.waiters import RECHECK, WaiterRegistry, WakeListener
from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient, HttpTransport
from tests.integration.services import SentinelGroup
from tests.test_chat_processes import poll, wait_for_parked_polls
from wsgi_app.redis_client import (
    BlockingSentinelConnectionPool,
    RedisTarget,
    async_sentinel,
    make_async_client,
    make_sync_client,
    parse_sentinels,
    primary_locator,
)
from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.chat.events import latest_message_key
from wsgi_app.services.profile import cache as profile_cache

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed"),
]


def sentinel_target(group: SentinelGroup, db: int = 3) -> RedisTarget:
    # The URL's host and port are deliberately wrong: only Sentinel may name the primary.
    sentinels = parse_sentinels(group.sentinels)
    return RedisTarget(url=f"redis://127.0.0.1:1/{db}", sentinels=sentinels, master_name=group.master_name)


async def _until(predicate: Any, timeout_secs: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline and not predicate():
        await asyncio.sleep(0.02)
    return bool(predicate())


# -- the clients through a real failover ----------------------------------------------------


def test_sync_and_async_clients_follow_a_failover(sentinel_group: SentinelGroup) -> None:
    target = sentinel_target(sentinel_group)
    sync = make_sync_client(target)
    sync.set("before", "1")
    assert sync.wait(2, 2000) == 2  # replicated: a failover must not lose it
    old = sentinel_group.kill_primary()
    new = sentinel_group.wait_for_new_primary(old)
    assert new != old
    deadline = time.monotonic() + 10
    while True:  # the first commands may still meet the dead primary's pooled connection
        try:
            sync.set("after", "2")
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
    assert sync.get("before") == "1" and sync.role()[0] == "master"
    assert sync.connection_pool.get_master_address()[1] == new  # type: ignore[attr-defined]

    async def scenario() -> tuple[Any, Any]:
        client = make_async_client(target)
        try:
            await client.set("async", "3")
            return await client.get("before"), (await client.role())[0]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == ("1", "master")


def test_the_async_sentinel_pool_waits_for_a_free_connection(sentinel_group: SentinelGroup) -> None:
    """As the direct client's BlockingConnectionPool does: never 'Too many connections'."""
    target = sentinel_target(sentinel_group)

    async def scenario(pool_class: type, **options: Any) -> str:
        client = async_sentinel(target).master_for(
            target.master_name, connection_pool_class=pool_class, max_connections=1, **options
        )
        try:
            blocker = asyncio.ensure_future(client.blpop(["nothing"], timeout=0.5))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            await client.set("k", "v")  # must wait for the blocked connection
            waited = time.monotonic() - started
            await blocker
            return f"waited {waited:.1f}"
        finally:
            await client.aclose()

    assert asyncio.run(scenario(BlockingSentinelConnectionPool, timeout=5)) in (
        "waited 0.3",
        "waited 0.4",
        "waited 0.5",
    )
    with pytest.raises(redis.ConnectionError):  # redis-py's own Sentinel pool refuses instead
        asyncio.run(scenario(redis.asyncio.sentinel.SentinelConnectionPool))


# -- the pub/sub listener


def test_listener_follows_a_killed_primary_to_the_new_one(sentinel_group: SentinelGroup) -> None:
    target = sentinel_target(sentinel_group)

    async def scenario() -> None:
        client = make_async_client(target)
        registry = WaiterRegistry()
        listener = WakeListener(client, registry, primary_locator(target))
        listener.start()
        try:
            assert await _until(listener.subscribed.is_set)
            first = listener.primary.subscribed_to
            waiting = registry.add(9)
            old = await asyncio.to_thread(sentinel_group.kill_primary)
            assert first == ("127.0.0.1", old)
            new = await asyncio.to_thread(sentinel_group.wait_for_new_primary, old)
            assert await _until(lambda: listener.primary.subscribed_to == ("127.0.0.1", new), 15)
            assert await _until(waiting.done) and waiting.result() == RECHECK
            assert not listener.primary.trusts_latest_keys() and listener.primary.moves == 1, (
                listener.primary.moves
            )
            # And it hears wake-ups published on the new primary.
            later = registry.add(10)
            await client.publish(listener.channel, '{"user_id": 10}')
            assert await _until(later.done) and later.result() is None
        finally:
            await listener.stop()
            await client.aclose()

    asyncio.run(scenario())


# -- a real server process: a waiting poll across the failover --------------------------------


def test_a_poll_waiting_through_a_failover_gets_the_message_exactly_once(
    sentinel_group: SentinelGroup, spawn_server, creds: AppCredentials, auth
) -> None:
    server = spawn_server(
        LONGPOLL_TIMEOUT_SECS="40",
        REDIS_URL="redis://127.0.0.1:1/3",
        REDIS_SENTINELS=",".join(sentinel_group.sentinels),
        REDIS_SENTINEL_MASTER=sentinel_group.master_name,
    )
    api = ApiClient(HttpTransport(server.base_url), creds)
    alice, bob = auth.login(), auth.login()
    cursor = poll(api, alice, None).data["cursor"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(poll, api, alice, cursor)
        wait_for_parked_polls(server.base_url, 1)
        redis_of_server = make_sync_client(sentinel_target(sentinel_group))
        epoch_before = int(redis_of_server.get(profile_cache.EPOCH_KEY) or 0)
        assert redis_of_server.wait(2, 2000) == 2
        signed_before_the_failover = f"{time.time():.3f}"  # a nonce the old primary may have lost
        old = sentinel_group.kill_primary()
        # Sends fail (503) only until Sentinel names the new primary; count how long.
        killed_at, failed, msg_id = time.monotonic(), 0, None
        while msg_id is None:
            assert time.monotonic() - killed_at < 30, "no send succeeded within 30 s of the kill"
            reply = send_text(api, bob, alice, "through the failover")
            if reply.status == 200:
                msg_id = sent_id(reply)
            else:
                assert reply.status == 503, reply.body
                failed += 1
                time.sleep(0.1)
        first_success_secs = time.monotonic() - killed_at
        assert sentinel_group.wait_for_new_primary(old) != old
        print(f"sends failed (503) for {first_success_secs:.2f} s after the kill: {failed} failed")
        reply = waiting.result(30)
    assert reply.status == 200, reply.body
    assert [m["msg_id"] for m in reply.data["list"]] == [msg_id]  # delivered, once
    # After the failover the new primary's latest-message keys may be stale-low (a raise the
    # old primary acknowledged and never replicated): leave one so, and the poll must still
    # read the database rather than park on the key.
    # The process voided its profile cache on the new primary (a lost invalidation cannot linger).
    deadline = time.monotonic() + 5
    while int(redis_of_server.get(profile_cache.EPOCH_KEY) or 0) <= epoch_before:
        assert time.monotonic() < deadline, "the profile cache epoch was not raised after the failover"
        time.sleep(0.05)
    # ... and moved the nonce epoch: a request signed before the move is refused (sign again),
    # so a nonce the failover lost cannot be replayed.
    deadline = time.monotonic() + 5
    while True:
        replayed = api.call(
            "POST", "/api/user/update", {"height": 171}, user=alice, timestamp=signed_before_the_failover
        )
        if replayed.status != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # the process's hook moving the epoch may still be on its way
    assert (replayed.status, replayed.body["code"]) == (401, 508), replayed.body
    second = sent_id(send_text(api, bob, alice, "after the failover"))
    redis_of_server.set(latest_message_key(alice.user_id), msg_id)
    started = time.monotonic()
    reply = poll(api, alice, msg_id)
    assert [m["msg_id"] for m in reply.data["list"]] == [second]
    assert time.monotonic() - started < 10  # read at once, not after the 40 s poll timeout
