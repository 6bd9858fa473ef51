"""The batcher's lean Redis connection, against its own ``redis-server`` (started, stopped, restarted)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis
import uvloop

from async_handlers.redis_batch import RedisBatcher
from async_handlers.redis_wire import RedisWire, wire_for_url
from tests.integration.services import RedisServer
from wsgi_app.redis_client import make_async_client

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
PASSWORD = "wire-test-secret"
T = TypeVar("T")


class PasswordRedisServer(RedisServer):
    def command(self) -> list[str]:
        return [*super().command(), "--requirepass", PASSWORD]

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, password=PASSWORD, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Runs a scenario on each event loop the server may use (``EVENT_LOOP``)."""
    return cast(
        Callable[[Coroutine[Any, Any, T]], T], asyncio.run if request.param == "asyncio" else uvloop.run
    )


def _wire(url: str) -> RedisWire:
    wire = wire_for_url(url)
    assert wire is not None
    return wire


def test_only_plain_redis_urls_get_a_wire() -> None:
    wire = _wire("redis://user:p%40ss@10.0.0.5:6380/4")
    assert (wire.host, wire.port, wire.db, wire.username, wire.password) == (
        "10.0.0.5",
        6380,
        4,
        "user",
        "p@ss",
    )
    assert _wire("redis://127.0.0.1").port == 6379
    for url in ("rediss://127.0.0.1:6379/0", "memory://", "unix:///tmp/r.sock", "redis://h:1/0?timeout=1"):
        assert wire_for_url(url) is None


def test_batches_get_their_own_answers_in_order_and_errors_as_redis_py_gives_them(
    own_redis: RedisServer, run: Any
) -> None:
    async def scenario() -> None:
        wire = _wire(own_redis.url.replace("/0", "/3"))
        answers = await asyncio.gather(
            *(
                wire.execute([("SET", f"k{i}", i, "EX", 60), ("GET", f"k{i}"), ("INCR", f"n{i % 7}")])
                for i in range(300)
            )
        )
        assert [a[:2] for a in answers] == [["OK", str(i)] for i in range(300)]  # raw replies
        for k in range(7):  # each counter counted its own increments, once each
            assert sorted(a[2] for i, a in enumerate(answers) if i % 7 == k) == list(
                range(1, len(range(k, 300, 7)) + 1)
            )
        await wire.execute([("SET", "text", "not a number")])
        incr, missing_script, ok = await wire.execute(
            [("INCR", "text"), ("EVALSHA", "0" * 40, 0), ("GET", "text")]
        )
        assert isinstance(incr, redis.ResponseError)
        assert isinstance(missing_script, redis.exceptions.NoScriptError)
        assert ok == "not a number"
        assert wire.connections_opened == 1
        wire.close()

    run(scenario())
    assert redis.Redis(port=own_redis.port, db=3, decode_responses=True).get("k5") == "5"  # SELECT 3 was sent


def test_the_batcher_coalesces_on_the_wire(own_redis: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        batcher = RedisBatcher(make_async_client(own_redis.url), _wire(own_redis.url))
        results = await asyncio.gather(
            *(batcher.run([("SET", f"b{i}", "x", "NX"), ("GET", f"b{i}")]) for i in range(300))
        )
        assert results == [["OK", "x"]] * 300
        assert batcher.pipelines_sent <= 8
        failing = batcher.run([("INCR", "b1")])
        with pytest.raises(redis.ResponseError):
            await failing
        batcher.close()
        await batcher.client.aclose()

    run(scenario())


def test_a_password_is_sent_first_and_a_wrong_one_refused(tmp_path: Path, run: Any) -> None:
    server = PasswordRedisServer(tmp_path)
    server.start()
    try:

        async def scenario() -> list[Any]:
            good = _wire(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
            answer = await good.execute([("SET", "a", "1"), ("GET", "a")])
            with pytest.raises(redis.ConnectionError):
                await _wire(f"redis://:wrong@127.0.0.1:{server.port}/0").execute([("GET", "a")])
            (no_auth,) = await _wire(f"redis://127.0.0.1:{server.port}/0").execute([("GET", "a")])
            assert isinstance(no_auth, redis.ResponseError) and "NOAUTH" in str(no_auth)
            good.close()
            return answer

        assert run(scenario()) == ["OK", "1"]
    finally:
        server.stop()


def test_the_next_batch_after_a_restart_succeeds_and_a_stopped_server_fails_fast(
    own_redis: RedisServer, run: Any
) -> None:
    async def scenario() -> None:
        wire = _wire(own_redis.url)
        assert await wire.execute([("SET", "r", "1")]) == ["OK"]
        own_redis.stop()
        own_redis.start()
        assert await wire.execute([("GET", "r"), ("SET", "r", "2")]) == [None, "OK"]  # a new server
        assert wire.connections_opened == 2
        own_redis.stop()
        began = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            await wire.execute([("GET", "r")])
        assert time.monotonic() - began < 5
        own_redis.start()
        assert await wire.execute([("GET", "r")]) == [None]
        wire.close()

    run(scenario())


def test_a_redis_that_stops_answering_fails_the_batch_within_the_reply_bound(
    run: Callable[[Coroutine[Any, Any, Any]], Any], own_redis: RedisServer
) -> None:
    """A stopped Redis (SIGSTOP: connections accepted, nothing answered) is a
    ``redis.TimeoutError`` within ``REDIS_REPLY_TIMEOUT_SECS``, not a wait without end; the
    connection is dropped and a Redis that answers again is used at once."""
    import os
    import signal

    from wsgi_app import timeouts

    wire = _wire(own_redis.url)

    async def scenario() -> tuple[float, Any]:
        assert await wire.execute([("SET", "k", "v")]) == ["OK"]
        assert own_redis.proc is not None
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            with pytest.raises(redis.TimeoutError):  # not the test's own bound (a builtin TimeoutError)
                await asyncio.wait_for(wire.execute([("GET", "k")]), 5 * timeouts.REDIS_REPLY_TIMEOUT_SECS)
            waited = time.monotonic() - started
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        again = await wire.execute([("GET", "k")])
        wire.close()
        return waited, again

    waited, again = run(scenario())
    assert timeouts.REDIS_REPLY_TIMEOUT_SECS <= waited < timeouts.REDIS_REPLY_TIMEOUT_SECS + 1.0
    assert again == ["v"]
