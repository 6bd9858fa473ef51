"""Load for the overload scenario: signed requests sent closed-loop (to measure what the stack
sustains) and open-loop (a fixed offered rate, whatever the answers take), through nginx.

A small HTTP/1.1 client on asyncio (uvloop) with keep-alive connections, so one
Python process can offer several times what the stack sustains: each request is
signed when it is sent (``sign_params``, as the apps do) and recorded with its
start and end time, HTTP status, envelope code and ``Retry-After``.
Invariants: every request sent is recorded exactly once; a request that got no
answer has status 0; the open loop sends on its schedule and never waits for answers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.auth.signing import sign_params

ANSWER_TIMEOUT_SECS = 30.0
MAX_CONNECTIONS = 400
NOT_SENT = -2
_nonces = itertools.count()


@dataclass
class Sent:
    kind: str  # "write", "read", "poll"
    started: float
    ended: float
    status: int  # 0: no answer; -2: not sent (the generator's own connection cap)
    code: int  # -1: no envelope
    retry_after: str | None = None
    error: str = ""

    @property
    def secs(self) -> float:
        return self.ended - self.started

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.code == 0


@dataclass(frozen=True)
class Person:
    user_id: int
    token: str


class HttpClient:
    """Keep-alive connections to one address; one request per connection at a time."""

    def __init__(self, base_url: str, creds: AppCredentials, stamp: bool = False) -> None:
        """``stamp``: add ``X-Request-Start`` as nginx does (when sending to a process directly)."""
        self.stamp = stamp
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.creds = creds
        self.idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self.open = 0

    def signed_request(self, method: str, path: str, params: dict[str, Any], person: Person) -> bytes:
        plain = {k: str(v) for k, v in params.items()}
        plain.update(userId=str(person.user_id), token=person.token)
        signed = sign_params(
            plain,
            appkey=self.creds.appkey,
            secret=self.creds.secret,
            sign_method=self.creds.sign_method,
            http_method=method,
            path=path,
            nonce=f"ov-{next(_nonces)}-{time.time_ns()}",
        )
        encoded = urlencode(signed)
        if method == "GET":
            return f"GET {path}?{encoded} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(encoded)}\r\n\r\n"
            f"{encoded}"
        ).encode()

    async def send(self, kind: str, request: bytes) -> Sent:
        started = time.monotonic()
        if self.stamp:  # what nginx adds: when the request left for the process
            request = request.replace(b"\r\n", b"\r\nX-Request-Start: t=%.3f\r\n" % time.time(), 1)
        if not self.idle and self.open >= MAX_CONNECTIONS:
            return Sent(kind, started, started, NOT_SENT, -1)
        try:
            status, headers, body = await asyncio.wait_for(self._exchange(request), ANSWER_TIMEOUT_SECS)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as err:
            return Sent(kind, started, time.monotonic(), 0, -1, error=type(err).__name__)
        ended = time.monotonic()
        try:
            code = int(json.loads(body).get("code", -1))
        except (ValueError, AttributeError):
            code = -1
        return Sent(kind, started, ended, status, code, headers.get("retry-after"))

    async def _exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        reader, writer = await self._connection()
        keep = False
        try:
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("closed before answering")
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            keep = headers.get("connection", "").lower() != "close"
            return status, headers, body
        finally:
            if keep:
                self.idle.append((reader, writer))
            else:
                self.open -= 1
                writer.close()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle:
            return self.idle.pop()
        if self.open >= MAX_CONNECTIONS:
            raise OSError("client connection cap reached")
        self.open += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.open -= 1
            raise

    def close(self) -> None:
        while self.idle:
            self.idle.pop()[1].close()


RequestMaker = Callable[[], tuple[str, bytes]]


async def closed_loop(client: HttpClient, make: RequestMaker, workers: int, secs: float) -> list[Sent]:
    """``workers`` callers, each sending its next request when the last is answered."""
    results: list[Sent] = []
    deadline = time.monotonic() + secs

    async def worker() -> None:
        while time.monotonic() < deadline:
            results.append(await client.send(*make()))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return results


async def open_loop(
    client: HttpClient, make: RequestMaker, rate: float, secs: float
) -> tuple[list[Sent], float]:
    """``rate`` requests a second for ``secs``, on schedule; returns the answers and the rate
    actually offered (the generator's own check: it must not be the bottleneck)."""
    results: list[Sent] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        results.append(await client.send(*make()))

    began = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - began) < secs:
        due = int(elapsed * rate) + 1
        while sent < due:
            task = asyncio.ensure_future(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.002)
    offered = sent / (time.monotonic() - began)
    if tasks:
        await asyncio.wait(tasks, timeout=ANSWER_TIMEOUT_SECS + 1)
    return results, offered


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0
