"""The waiter registry and the one wake-up listener, on their own event loop."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis.asyncio as aioredis
from flask import Flask

from async_handlers.base import NativeContext
from async_handlers.waiters import Subscription, WaiterRegistry, WakeListener, drain_waiters
from tests.conftest import free_port
from wsgi_app.errors import SHUTTING_DOWN, ApiError
from wsgi_app.redis_client import make_async_client
from wsgi_app.services.chat.events import wake_channel, wake_payload


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_registry_wakes_only_the_named_user_and_forgets_discarded_waiters() -> None:
    async def scenario() -> None:
        registry = WaiterRegistry()
        alice_1, alice_2, bob = registry.add(1), registry.add(1), registry.add(2)
        assert registry.count() == 3 and registry.users() == {1, 2}
        assert registry.wake_user(1) == 2
        assert alice_1.done() and alice_2.done() and not bob.done()
        registry.discard(1, alice_1)
        registry.discard(1, alice_2)
        registry.discard(1, alice_2)  # twice is harmless
        assert registry.users() == {2} and registry.count() == 1
        assert registry.wake_all() == 1 and bob.done()
        registry.discard(2, bob)
        assert registry.count() == 0

    run(scenario())


def test_closing_registry_wakes_everyone_and_resolves_late_waiters_at_once() -> None:
    async def scenario() -> None:
        registry = WaiterRegistry()
        early = registry.add(7)

        async def answer_after_wake() -> None:
            await early
            registry.discard(7, early)

        answering = asyncio.ensure_future(answer_after_wake())
        started = time.monotonic()
        await drain_waiters(registry, timeout_secs=2)
        assert time.monotonic() - started < 1
        await answering
        late = registry.add(8)
        assert late.done() and registry.closing

    run(scenario())


async def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def test_listener_wakes_the_user_named_in_a_wakeup_and_ignores_garbage(base_config: dict[str, Any]) -> None:
    async def scenario() -> None:
        client = make_async_client(base_config["REDIS_URL"])
        registry = WaiterRegistry()
        listener = WakeListener(client, registry)
        listener.start()
        try:
            assert await _wait_for(listener.subscribed.is_set)
            alice, bob = registry.add(101), registry.add(102)
            channel = wake_channel(client)
            await client.publish(channel, "not json")
            await client.publish(channel, '{"user_id": "101"}')
            await client.publish(channel, wake_payload(102, 5))
            assert await _wait_for(bob.done)
            assert not alice.done()
            assert listener.wakeups_received == 3
        finally:
            await listener.stop()
            await client.aclose()

    run(scenario())


def test_listener_stops_promptly_whenever_it_is_stopped(base_config: dict[str, Any]) -> None:
    """Even mid-subscribe, where redis-py may swallow a cancellation."""

    async def scenario() -> None:
        client = make_async_client(base_config["REDIS_URL"])
        try:
            for delay in (0, 0.0005, 0.001, 0.002, 0.005, 0.02, 0.2):
                listener = WakeListener(client, WaiterRegistry())
                listener.start()
                await asyncio.sleep(delay)
                started = time.monotonic()
                await listener.stop()
                assert time.monotonic() - started < 3, delay
        finally:
            await client.aclose()

    run(scenario())


def test_listener_keeps_retrying_while_redis_is_down_and_still_stops() -> None:
    async def scenario() -> None:
        dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
        listener = WakeListener(dead, WaiterRegistry())
        task = listener.start()
        await asyncio.sleep(0.8)  # several refused connections, with backoff
        assert not task.done() and not listener.subscribed.is_set()
        await listener.stop()
        assert task.done()
        await dead.aclose()

    run(scenario())


def test_native_calls_after_the_pool_shut_down_answer_shutting_down(app: Flask) -> None:
    async def scenario() -> None:
        pool = ThreadPoolExecutor(1)
        context = NativeContext(flask_app=app, executor=pool, redis=make_async_client("memory://"))
        assert await context.run_blocking(lambda: 42) == 42
        pool.shutdown()
        with pytest.raises(ApiError) as info:
            await context.run_blocking(lambda: 42)
        assert info.value.spec is SHUTTING_DOWN

    run(scenario())


def test_another_subscription_gets_its_messages_and_each_resubscription(base_config: dict[str, Any]) -> None:
    """The application changes ride on the listener's connection: each message reaches its
    handler (a failing handler stops nothing), and a new subscription after a lost one says so
    (the credentials cache then forgets everything it may have missed)."""
    seen: list[str] = []
    subscribed: list[int] = []

    def on_message(data: str) -> None:
        if data == "boom":
            raise ValueError(data)
        seen.append(data)

    async def scenario() -> None:
        client = make_async_client(base_config["REDIS_URL"])
        registry = WaiterRegistry()
        other = Subscription("test:other", on_message, lambda: subscribed.append(1))
        listener = WakeListener(client, registry, subscriptions=[other])
        listener.start()
        try:
            assert await _wait_for(listener.subscribed.is_set)
            assert subscribed == []  # the first subscription: nothing was missed
            waiter = registry.add(7)
            for data in ("A1", "boom", "B2"):
                await client.publish("test:other", data)
            assert await _wait_for(lambda: seen == ["A1", "B2"])
            assert not waiter.done()  # another channel's message wakes no poll
            await listener.drop_connection_for_testing()
            assert await _wait_for(lambda: len(subscribed) == 1)
        finally:
            await listener.stop()
            await client.aclose()

    run(scenario())
