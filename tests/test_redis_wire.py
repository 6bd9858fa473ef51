"""The lean Redis connection (``async_handlers.redis_wire``): each caller its own answers, an
error only for its own caller, a lost connection reported and replaced. Needs a real Redis."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import redis

from async_handlers import redis_wire
from wsgi_app.redis_client import make_async_client


def test_callers_get_their_own_answers_errors_and_a_new_connection(base_config: dict[str, Any]) -> None:
    async def scenario() -> None:
        client = make_async_client(base_config["REDIS_URL"])
        wire = redis_wire.for_client(client)
        if wire is None:
            await client.aclose()
            pytest.skip("the embedded Redis stand-in has no wire to talk to")
        assert redis_wire.for_client(client) is wire
        prefix = f"test:wire:{secrets.token_hex(4)}"
        try:
            await client.set(f"{prefix}:text", "not a number")

            async def caller(i: int) -> list[Any]:
                commands = [("SET", f"{prefix}:{i}", str(i), "EX", 60), ("MGET", f"{prefix}:{i}", "-")]
                return await wire.run(commands)

            answers = await asyncio.gather(*(caller(i) for i in range(300)))
            assert answers == [["OK", [str(i), None]] for i in range(300)]
            bad = wire.run([("INCR", f"{prefix}:text")])
            missing = wire.run([("EVALSHA", "0" * 40, 0)])
            good = wire.run([("GET", f"{prefix}:7")])
            results = await asyncio.gather(bad, missing, good, return_exceptions=True)
            assert isinstance(results[0], redis.ResponseError)
            assert isinstance(results[1], redis.exceptions.NoScriptError)
            assert results[2] == ["7"]
            name = f"wire-{secrets.token_hex(4)}"
            await wire.run([("CLIENT", "SETNAME", name)])
            waiting = asyncio.ensure_future(wire.run([("BLPOP", f"{prefix}:never", 5)]))
            await asyncio.sleep(0.1)
            await client.execute_command("CLIENT", "KILL", "ID", await _id(client, name))
            with pytest.raises(redis.ConnectionError):
                await waiting
            assert await wire.run([("GET", f"{prefix}:8")]) == ["8"]  # connected again
        finally:
            keys = [key async for key in client.scan_iter(f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await wire.aclose()
            await client.aclose()

    asyncio.run(scenario())


async def _id(client: Any, name: str) -> str:
    for fields in await client.client_list():
        if fields.get("name") == name:
            return str(fields["id"])
    raise AssertionError(f"no client named {name}")
