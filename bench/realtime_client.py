"""The realtime generator's HTTP/1.1 connection (:class:`Conn`) and the state of one run
(:class:`Run`: what was sent, accepted, delivered; every request signed like a real app's).

Invariant: a ``Conn`` carries one request at a time, on one keep-alive connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from wsgi_app.services.auth.signing import sign_params


class Conn:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        query = urlencode(params)
        if method == "GET":
            head = f"GET {path}?{query} HTTP/1.1\r\nHost: {self.host}\r\n\r\n"
            self.writer.write(head.encode())
        else:
            body = query.encode()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            self.writer.write(head.encode() + body)
        assert self.reader is not None
        status = int((await self.reader.readline()).split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).strip(), 16):
                parts.append(await self.reader.readexactly(size + 2))
            await self.reader.readline()
            payload = b"".join(p[:-2] for p in parts)
        else:
            payload = await self.reader.readexactly(length)
        return status, json.loads(payload)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Run:
    plan: dict[str, Any]
    statuses: dict[str, int] = field(default_factory=dict)
    waiting: set[int] = field(default_factory=set)
    accepted_at: dict[int, float] = field(default_factory=dict)
    received_at: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    crud_ms: list[float] = field(default_factory=list)
    send_ms: list[float] = field(default_factory=list)
    # when each poll came back empty (timed out) and was re-sent: the steady state's re-polls
    repolled_at: list[float] = field(default_factory=list)
    parked_requests: int = 0
    stopping: bool = False

    def signed(self, method: str, path: str, params: dict[str, Any]) -> dict[str, str]:
        plan = self.plan
        return sign_params(
            {k: str(v) for k, v in params.items()},
            appkey=plan["appkey"],
            secret=plan["secret"],
            sign_method=plan["sign_method"],
            http_method=method,
            path=path,
        )

    def count(self, what: str, status: int, body: Any) -> None:
        key = f"{what} {status}/{body.get('code') if isinstance(body, dict) else '?'}"
        self.statuses[key] = self.statuses.get(key, 0) + 1
