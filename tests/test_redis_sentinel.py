"""Redis behind Sentinel: the topology is configuration, and the wake listener follows the primary.

``REDIS_SENTINELS`` / ``REDIS_SENTINEL_MASTER`` make every client find the
primary through Sentinel; without them nothing changes (one Redis, the lean
connection). The listener rule is checked here against a plain ``redis-server``
with a stand-in locator; the real failovers (a primary, two replicas, three
sentinels, the primary SIGKILLed) are in ``tests/integration/test_redis_failover.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

import pytest

from async_handlers.waiters import RECHECK, WaiterRegistry, WakeListener
from tests.integration.services import RedisServer
from wsgi_app.config import DEFAULT_SENTINEL_MASTER
from wsgi_app.redis_client import (
    RedisTarget,
    make_async_client,
    parse_sentinels,
    primary_locator,
)

needs_redis = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")


# -- configuration --------------------------------------------------------------------------


def test_one_redis_stays_the_default_and_keeps_the_lean_connection() -> None:
    plain = RedisTarget.from_config({"REDIS_URL": "redis://10.0.0.5:6380/4"})
    assert not plain.uses_sentinel and plain.lean_wire_url() == "redis://10.0.0.5:6380/4"
    assert RedisTarget.from_config({}).embedded and RedisTarget.from_config({}).lean_wire_url() is None
    assert primary_locator(plain) is None


def test_sentinel_topology_is_configuration() -> None:
    target = RedisTarget.from_config(
        {
            "REDIS_URL": "redis://app:s%40cret@ignored:1/6",
            "REDIS_SENTINELS": ["10.213.0.31:26379", "10.213.0.32", " redis-c:26380 "],
            "REDIS_SENTINEL_MASTER": "city",
        }
    )
    assert target.sentinels == (("10.213.0.31", 26379), ("10.213.0.32", 26379), ("redis-c", 26380))
    assert target.master_name == "city" and target.uses_sentinel
    assert target.lean_wire_url() is None  # the lean connection cannot follow a failover
    assert target.server_kwargs() == {"db": 6, "username": "app", "password": "s@cret"}
    assert parse_sentinels("10.213.0.31:26379, 10.213.0.32") == (
        ("10.213.0.31", 26379),
        ("10.213.0.32", 26379),
    )
    with pytest.raises(ValueError):
        parse_sentinels(["10.0.0.1:port"])


def test_config_reads_the_sentinel_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsgi_app.config import config_from_env

    assert config_from_env("/tmp")["REDIS_SENTINELS"] == []
    monkeypatch.setenv("REDIS_SENTINELS", "10.213.0.31:26379,10.213.0.32:26379")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "city")
    config = config_from_env("/tmp")
    assert config["REDIS_SENTINELS"] == ["10.213.0.31:26379", "10.213.0.32:26379"]
    assert RedisTarget.from_config(config).master_name == "city"
    assert RedisTarget(url="memory://").master_name == DEFAULT_SENTINEL_MASTER


# -- the pub/sub listener ---------------------------------------------------------------------


async def _until(predicate: Any, timeout_secs: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline and not predicate():
        await asyncio.sleep(0.02)
    return bool(predicate())


@needs_redis
def test_listener_subscribed_away_from_the_primary_resubscribes_and_wakes_every_poll(
    own_redis: RedisServer,
) -> None:
    """The trap: a pub/sub connection is never idle, so nothing else moves it to a new primary."""

    async def scenario(named: tuple[str, int]) -> tuple[int, Any, bool, int]:
        client = make_async_client(own_redis.url)

        async def locate() -> tuple[str, int]:
            return named

        registry = WaiterRegistry()
        listener = WakeListener(client, registry, locate)
        moved: list[str] = []

        async def hook() -> None:
            moved.append("moved")

        listener.primary.on_primary_moved.append(hook)
        listener.start()
        try:
            assert await _until(listener.subscribed.is_set)
            waiting = registry.add(7)
            await _until(waiting.done, timeout_secs=2.5)
            await asyncio.sleep(0.05)
            assert len(moved) == listener.primary.moves  # the hooks ran once per move
            woken_with = waiting.result() if waiting.done() else None
            return listener.connect_count, woken_with, listener.primary.trusts_latest_keys(), len(moved)
        finally:
            await listener.stop()
            await client.aclose()

    # Sentinel names the address it is subscribed at: nothing happens.
    assert asyncio.run(scenario(("127.0.0.1", own_redis.port))) == (1, None, True, 0)
    # Sentinel names another primary: it subscribes again and wakes every waiter to look again,
    # and no longer trusts the latest-message keys (they may be stale-low after a failover).
    connects, woken_with, trusts, moves = asyncio.run(scenario(("127.0.0.1", 1)))
    assert connects >= 2 and woken_with == RECHECK and trusts is False and moves >= 1
