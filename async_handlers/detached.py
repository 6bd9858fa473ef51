"""HTTP/1 on a stream taken from Tornado's connection: Tornado reads one request, we answer it.

A long-poll waits for minutes. Answered by a ``RequestHandler``, all of Tornado's
per-request machinery would wait with it: the handler and its request, the
``HTTP1Connection`` with its serving coroutine and Task, the raw header bytes
and parsed headers in their frames. :class:`DetachingRequest` lets Tornado read
and parse one request (an ``HTTPServerRequest``: Tornado's query parsing and
limits), and once the whole request is read takes the stream
(``HTTP1Connection.detach``; Tornado's serving loop for it then ends) and gives
``start(stream, request, keep_alive)`` the stream and the request to keep what
it needs of. :func:`write_answer` writes a whole answer to such a stream and
then either hands the stream back to the HTTP server (kept alive: a new Tornado
connection reads its next request) or closes it once written.

Invariants:

* keep-alive is decided as Tornado decides it for the request, and is off while
  the process drains (``HTTPServer.conn_params.no_keep_alive``);
* every answer carries ``Content-Length``, ``Date`` and :data:`SECURITY_HEADERS`
  (as every native answer), ``Connection: close`` on HTTP/1.1 when not kept and
  ``Connection: Keep-Alive`` on HTTP/1.0 when kept;
* a stream handed back is counted by the server again (``handle_stream``), a
  detached one is not: its owner counts it (``PollParking.detached``, which the
  drain of ``tornado_server`` waits for beside the server's connections).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http.client import responses
from typing import cast

from tornado import httputil
from tornado.http1connection import HTTP1Connection, is_transfer_encoding_chunked
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream, StreamClosedError

from async_handlers.lean_get import http_date
from wsgi_app.http_common import SECURITY_HEADERS

# (the detached stream, the request as Tornado parsed it, keep-alive) -> None
Start = Callable[[IOStream, httputil.HTTPServerRequest, bool], None]


class DetachingRequest(httputil.HTTPMessageDelegate):
    """One request read by Tornado, then its stream detached and handed to ``start``."""

    def __init__(self, start: Start, server_conn: object, request_conn: httputil.HTTPConnection) -> None:
        self.start = start
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.request: httputil.HTTPServerRequest | None = None
        self.start_line: httputil.RequestStartLine | None = None
        self.chunks: list[bytes] = []

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.start_line = start_line
        self.request = httputil.HTTPServerRequest(
            connection=self.request_conn,
            start_line=start_line,
            headers=headers,
            server_connection=self.server_conn,
        )

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        request, start_line, self.request, self.start_line = self.request, self.start_line, None, None
        assert request is not None and start_line is not None
        request.body, self.chunks = b"".join(self.chunks), []
        connection = cast(HTTP1Connection, self.request_conn)
        # Keep-alive decided as Tornado does for this request (detaching forgets it).
        keep_alive = request_keeps_alive(start_line, request.headers)
        self.start(connection.detach(), request, keep_alive)

    def on_connection_close(self) -> None:
        self.request, self.start_line, self.chunks = None, None, []


def request_keeps_alive(start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> bool:
    """Whether the connection stays open after this request's answer, by HTTP/1's rules as
    Tornado applies them (``HTTP1Connection``; the server never sets ``no_keep_alive``):
    HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only with ``Connection: keep-alive`` and
    a body length it can read (``Content-Length``, chunked) or a GET / HEAD."""
    connection = (headers.get("Connection") or "").lower()
    if start_line.version == "HTTP/1.1":
        return connection != "close"
    readable = (
        "Content-Length" in headers
        or is_transfer_encoding_chunked(headers)
        or start_line.method in ("HEAD", "GET")
    )
    return readable and connection == "keep-alive"


def hand_back(server: HTTPServer | None, stream: IOStream) -> None:
    """Give a kept-alive stream back to ``server`` for its next request (or close it)."""
    try:
        address = stream.socket.getpeername()
    except OSError:
        address = None
    if server is None or address is None or stream.closed():
        stream.close()
        return
    server.handle_stream(stream, address)


def write_answer(
    stream: IOStream,
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    *,
    http10: bool,
    keep_alive: bool,
    server: HTTPServer | None,
) -> None:
    """Write a whole answer; then hand the stream back (``keep_alive``, not draining) or close it."""
    keep_alive = keep_alive and server is not None and not server.conn_params.no_keep_alive
    lines = [f"HTTP/1.1 {status} {responses.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"{name}: {value}" for name, value in SECURITY_HEADERS.items() if name not in headers]
    lines.append(f"Content-Length: {len(payload)}")
    lines.append(f"Date: {http_date()}")
    if not keep_alive and not http10:
        lines.append("Connection: close")
    elif keep_alive and http10:
        lines.append("Connection: Keep-Alive")
    try:
        written = stream.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + payload)
    except StreamClosedError:
        return
    if keep_alive:
        hand_back(server, stream)
    else:
        written.add_done_callback(lambda _: stream.close())
