"""Coalesce the event loop's small Redis round trips into shared pipelines.

Thousands of polls parking at once each need a few Redis commands (the nonce
``SET NX``, the token-cache ``GET``, the latest-message ``GET``). Sent one
pipeline per request they cost a connection checkout, a write and a read each;
here every request submitted while the loop runs one iteration goes out in
ONE pipeline, and while pipelines are in flight new requests gather for the
next one. Invariants:

- each caller gets exactly its own answers, in its own order (or, for a failed
  command, that command's exception; a connection failure fails the batch);
- at most ``MAX_IN_FLIGHT`` pipelines at once, at most ``MAX_BATCH`` requests
  each, so one slow round trip never holds back more than one batch;
- no ordering between different callers is promised (none is needed: each
  request's commands are independent of every other request's).

The pipelines go out on a :class:`~async_handlers.redis_wire.RedisWire` (one lean
connection, hiredis) when the Redis URL allows one, else through ``redis.asyncio``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import redis
import redis.asyncio as aioredis

from async_handlers.redis_wire import RedisWire

MAX_BATCH = 256
MAX_IN_FLIGHT = 4
Command = tuple[Any, ...]


class RedisBatcher:
    """Runs lists of commands for many callers in shared pipelines (event-loop only)."""

    def __init__(self, client: aioredis.Redis, wire: RedisWire | None = None) -> None:
        self.client = client
        self.wire = wire
        self._pending: deque[tuple[list[Command], asyncio.Future[list[Any]]]] = deque()
        self._scheduled = False
        self._in_flight = 0
        self.pipelines_sent = 0

    async def run(self, commands: list[Command]) -> list[Any]:
        """The answers to ``commands`` (each a ``execute_command`` argument tuple)."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((commands, future))
        self._schedule()
        answers = await future
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return answers

    def _schedule(self) -> None:
        if self._pending and not self._scheduled and self._in_flight < MAX_IN_FLIGHT:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending or self._in_flight >= MAX_IN_FLIGHT:
            return
        batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
        self._in_flight += 1
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[list[Command], asyncio.Future[list[Any]]]]) -> None:
        try:
            if self.wire is not None:
                answers = await self.wire.execute([command for commands, _ in batch for command in commands])
            else:
                pipe = self.client.pipeline(transaction=False)
                for commands, _ in batch:
                    for command in commands:
                        pipe.execute_command(*command)
                answers = await pipe.execute(raise_on_error=False)
            self.pipelines_sent += 1
            start = 0
            for commands, future in batch:
                if not future.done():
                    future.set_result(answers[start : start + len(commands)])
                start += len(commands)
        except BaseException as err:  # connection lost, cancelled at shutdown: every caller hears it
            for _, future in batch:
                if not future.done():
                    future.set_exception(
                        err if isinstance(err, Exception) else redis.ConnectionError("batch cancelled")
                    )
            if not isinstance(err, Exception):
                raise
        finally:
            self._in_flight -= 1
            self._schedule()

    def close(self) -> None:
        """Close the lean connection (at shutdown; a later batch would open a new one)."""
        if self.wire is not None:
            self.wire.close()
