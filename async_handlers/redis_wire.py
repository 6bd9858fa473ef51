"""A lean Redis connection for the event loop's coalesced round trips (:mod:`async_handlers.redis_batch`).

``redis.asyncio`` spent ~100 us of CPU per pipeline (a connection checkout, the
retry wrapper, a timeout context per reply, packing and parsing in Python);
this writes a batch's commands in one write on one long-lived connection and
parses the replies with hiredis as they arrive: ~15 us (``bench/crud_profile.md``).
It serves only the batcher: pub/sub and everything else keep ``redis.asyncio``.

Invariants:

- replies are matched to batches in the order the batches were written (Redis
  answers in order on one connection); each batch gets exactly its commands'
  answers, an error reply as that command's exception (``NoScriptError`` for
  ``NOSCRIPT``, else ``ResponseError``), as redis-py's pipeline with
  ``raise_on_error=False`` gives them. Answers are Redis's own replies, decoded
  as UTF-8: redis-py's per-command conversions are not applied (``SET`` answers
  ``"OK"`` or None, not True or None), so the batch's users send only commands
  whose raw replies they read (``GET``, ``MGET``, ``SET``, ``DEL``, scripts);
- a lost connection fails every batch written to it and not yet answered; like
  redis-py's retry (``wsgi_app.redis_client``: ``REDIS_RETRIES``, same backoff),
  such a batch is sent again on a new connection, then fails with
  ``redis.ConnectionError`` (the caller answers 503);
- a batch not answered within ``wsgi_app.timeouts.REDIS_REPLY_TIMEOUT_SECS``
  fails with ``redis.TimeoutError`` (not retried: a Redis that stopped answering
  would only be waited for again) and its connection is closed;
- a new connection is opened only when a batch needs one (connect bounded by
  ``CONNECT_TIMEOUT_SECS``), authenticated and on the URL's database before any
  batch is written to it;
- only plain ``redis://host[:port][/db]`` URLs, with an optional user and
  password (:func:`wire_for_url`); any other keeps ``redis.asyncio``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis
import redis

from wsgi_app import timeouts
from wsgi_app.redis_client import REDIS_BACKOFF_BASE_SECS, REDIS_BACKOFF_CAP_SECS, REDIS_RETRIES

CONNECT_TIMEOUT_SECS = 2.0
DEFAULT_PORT = 6379
Command = tuple[Any, ...]


def _reply_error(reply: hiredis.ReplyError) -> redis.ResponseError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    return redis.ResponseError(message)


class _Batch:
    __slots__ = ("answers", "count", "future")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.count = count
        self.answers: list[Any] = []


class _Connection(asyncio.Protocol):
    """One socket: batches written in order, answered in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.pending: deque[_Batch] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, commands: list[Command]) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            future.set_exception(redis.ConnectionError("Redis connection closed"))
            return future
        self.pending.append(_Batch(future, len(commands)))
        self.transport.write(b"".join([hiredis.pack_command(command) for command in commands]))
        return future

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError:
                assert self.transport is not None
                self.transport.abort()  # connection_lost fails what is pending
                return
            if reply is False:
                return
            if not pending:  # an answer nobody asked for: the stream is out of step
                assert self.transport is not None
                self.transport.abort()
                return
            batch = pending[0]
            batch.answers.append(_reply_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
            if len(batch.answers) == batch.count:
                pending.popleft()
                if not batch.future.done():
                    batch.future.set_result(batch.answers)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = redis.ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}")
        while self.pending:
            batch = self.pending.popleft()
            if not batch.future.done():
                batch.future.set_exception(error)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RedisWire:
    """Runs command lists on one shared connection (event loop only)."""

    def __init__(
        self, host: str, port: int, db: int = 0, username: str | None = None, password: str | None = None
    ):
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self.connections_opened = 0

    async def execute(self, commands: list[Command]) -> list[Any]:
        """The answers to ``commands``, in order (a failed command's answer is its exception)."""
        for attempt in range(REDIS_RETRIES + 1):
            try:
                connection = await self._connected()
                try:
                    return await asyncio.wait_for(
                        connection.send(commands), timeouts.REDIS_REPLY_TIMEOUT_SECS
                    )
                except TimeoutError:
                    connection.close()  # the stream is out of step: fails what else is pending
                    raise redis.TimeoutError(
                        f"Redis did not answer within {timeouts.REDIS_REPLY_TIMEOUT_SECS:g}s"
                    ) from None
            except redis.ConnectionError:
                if attempt == REDIS_RETRIES:
                    raise
                await asyncio.sleep(min(REDIS_BACKOFF_CAP_SECS, REDIS_BACKOFF_BASE_SECS * 2**attempt))
        raise AssertionError("unreachable")

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection is None or self._connection.closed:
                self._connection = await self._open()
            return self._connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port), CONNECT_TIMEOUT_SECS
            )
        except (OSError, TimeoutError) as err:
            raise redis.ConnectionError(f"Error connecting to {self.host}:{self.port}: {err}") from None
        self.connections_opened += 1
        setup: list[Command] = []
        if self.password is not None:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        if setup:
            for answer in await connection.send(setup):
                if isinstance(answer, Exception):
                    connection.close()
                    raise redis.AuthenticationError(f"Redis refused the connection set-up: {answer}")
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def wire_for_url(url: str) -> RedisWire | None:
    """A :class:`RedisWire` for a plain ``redis://`` URL; None for any other (TLS, socket, embedded)."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname or parts.query:
        return None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        return None
    return RedisWire(
        parts.hostname,
        parts.port or DEFAULT_PORT,
        int(path or 0),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password is not None else None,
    )
