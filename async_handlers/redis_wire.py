"""A lean pipelined Redis connection for the event loop: RESP by hiredis, no per-command coroutine.

``redis.asyncio``'s pipeline costs, per command, a coroutine with a timeout scope,
a health check and the response callbacks; for the nearby page's small
round trips (the rate limit with the cells' ``MGET``, then the cards' ``MGET``)
that machinery was most of their cost. Here every caller's commands go out
packed by ``hiredis.pack_command`` in one write per loop iteration on ONE
connection, and one ``asyncio.Protocol`` feeds the replies to a
``hiredis.Reader`` and hands them out in order. Invariants:

- Redis answers a connection's commands in order, so the replies are matched to
  the callers by position: each caller gets exactly its own answers, raw (no
  response callbacks: ``SET`` answers ``"OK"``), decoded as UTF-8;
- an error reply becomes ``redis.exceptions.ResponseError`` (``NoScriptError``
  for ``NOSCRIPT``) and fails only its own caller, as in :mod:`async_handlers.redis_batch`;
- a lost connection fails every caller waiting on it with ``redis.ConnectionError``
  (mapped to the usual 503 envelope); the next call connects again. Nothing is
  retried: a command may have run.

:func:`for_client` gives one per async client for a plain TCP Redis URL, else None
(the embedded stand-in, TLS, Unix sockets: use the shared pipelines instead).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

import hiredis
import redis

Command = tuple[Any, ...]
CONNECT_TIMEOUT_SECS = 2.0
_CONNECTION_KEYS = {"host", "port", "db", "username", "password"}
_BY_CLIENT: WeakKeyDictionary[Any, WireBatcher | None] = WeakKeyDictionary()


def _error(reply: hiredis.ReplyError) -> redis.exceptions.ResponseError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    return redis.exceptions.ResponseError(message)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiting: deque[tuple[int, list[Any], asyncio.Future[list[Any]]]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.pending: list[bytes] = []  # packed commands of this loop iteration, written at once
        self.scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        while (reply := self.reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self._fail(redis.ConnectionError("unexpected reply from Redis"))
                return
            count, answers, future = waiting[0]
            answers.append(_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
            if len(answers) == count:
                waiting.popleft()
                if not future.done():
                    future.set_result(answers)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def _fail(self, err: Exception) -> None:
        self.lost = True
        while self.waiting:
            _, _, future = self.waiting.popleft()
            if not future.done():
                future.set_exception(err)
        if self.transport is not None:
            self.transport.close()


def _flush(protocol: _Protocol) -> None:
    protocol.scheduled = False
    data, protocol.pending = b"".join(protocol.pending), []
    if protocol.transport is not None and not protocol.lost:  # lost: its callers have failed
        protocol.transport.write(data)


class WireBatcher:
    """``run(commands)`` like :class:`async_handlers.redis_batch.RedisBatcher`, on one connection."""

    def __init__(
        self, host: str, port: int, db: int = 0, username: str | None = None, password: str | None = None
    ):
        self.address = (host, port)
        self.setup: list[Command] = []
        if password:
            self.setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            self.setup.append(("SELECT", db))
        self.hooked = False  # its close is among the process's shutdown hooks
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        protocol.waiting.append((len(commands), [], future))
        protocol.pending.extend(hiredis.pack_command(command) for command in commands)
        if not protocol.scheduled:
            protocol.scheduled = True
            asyncio.get_running_loop().call_soon(_flush, protocol)
        answers = await future
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return answers

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_Protocol, *self.address), CONNECT_TIMEOUT_SECS
            )
        except (OSError, TimeoutError) as err:
            raise redis.ConnectionError(f"cannot connect to Redis: {err}") from err
        if self.setup:
            future: asyncio.Future[list[Any]] = loop.create_future()
            protocol.waiting.append((len(self.setup), [], future))
            assert protocol.transport is not None
            protocol.transport.write(b"".join(hiredis.pack_command(command) for command in self.setup))
            for answer in await future:
                if isinstance(answer, Exception):
                    protocol.transport.close()
                    raise redis.ConnectionError(f"Redis refused the connection set-up: {answer}")
        self._protocol = protocol
        return protocol

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()


def for_client(client: Any) -> WireBatcher | None:
    """The lean connection beside ``client`` (a ``redis.asyncio`` client), or None when its
    pool is not a plain TCP one (the embedded stand-in, TLS, Unix sockets)."""
    if client in _BY_CLIENT:
        return _BY_CLIENT[client]
    pool = getattr(client, "connection_pool", None)
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {})
    connection_class = getattr(pool, "connection_class", None)
    plain = connection_class is redis.asyncio.Connection and "host" in kwargs
    batcher = None
    if plain:
        batcher = WireBatcher(
            kwargs["host"],
            int(kwargs.get("port", 6379)),
            int(kwargs.get("db") or 0),
            kwargs.get("username"),
            kwargs.get("password"),
        )
    _BY_CLIENT[client] = batcher
    return batcher
