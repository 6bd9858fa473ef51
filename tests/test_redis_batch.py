"""Coalesced Redis round trips: each caller gets exactly its own answers, in few pipelines."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import redis

from async_handlers.redis_batch import RedisBatcher
from wsgi_app.redis_client import make_async_client


def test_concurrent_callers_share_pipelines_and_get_their_own_answers(base_config: dict[str, Any]) -> None:
    async def scenario() -> None:
        client = make_async_client(base_config["REDIS_URL"])
        batcher = RedisBatcher(client)
        prefix = f"test:batch:{secrets.token_hex(4)}"
        try:
            await client.set(f"{prefix}:text", "not a number")

            async def caller(i: int) -> list[Any]:
                return await batcher.run(
                    [("SET", f"{prefix}:{i}", str(i), "EX", 60, "NX"), ("GET", f"{prefix}:{i}")]
                )

            answers = await asyncio.gather(*(caller(i) for i in range(300)))
            assert [a[1] for a in answers] == [str(i) for i in range(300)]
            assert all(a[0] for a in answers)
            assert batcher.pipelines_sent <= 8, "300 concurrent callers were not coalesced"
            # A failing command fails only its own caller.
            bad = batcher.run([("INCR", f"{prefix}:text")])
            good = batcher.run([("SET", f"{prefix}:0", "again", "EX", 60, "NX")])
            results = await asyncio.gather(bad, good, return_exceptions=True)
            assert isinstance(results[0], redis.ResponseError)
            assert results[1] == [None]  # the nonce-style SET NX saw the key: not fresh
        finally:
            keys = [key async for key in client.scan_iter(f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    asyncio.run(scenario())


def test_a_dead_connection_fails_every_caller_of_the_batch() -> None:
    async def scenario() -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        client = make_async_client(f"redis://127.0.0.1:{port}/0")
        batcher = RedisBatcher(client)
        results = await asyncio.gather(
            *(batcher.run([("GET", "x")]) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, redis.ConnectionError) for r in results)
        await client.aclose()

    asyncio.run(scenario())


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
