"""The HTTP edge of a Tornado process, before any handler runs: every refusal the edge makes.

Invariants:
- ``X-Real-IP`` / ``X-Forwarded-For`` change the client address only when the
  TCP peer is in ``TRUSTED_PROXIES`` (Tornado's ``xheaders=True`` believes anyone).
- ``X-Request-Id`` (which also marks a resend as a retry) counts only from a trusted proxy.
- A header whose name has an underscore is dropped, from every sender (nginx's own rule,
  ``underscores_in_headers off``): a WSGI environ spells ``X_Request_Id`` and
  ``X-Request-Id`` alike (``HTTP_X_REQUEST_ID``), so such a name could pose as a trusted
  header on the Flask path.
- A request target over :data:`MAX_REQUEST_TARGET_BYTES` is answered 414, a header block
  over :data:`MAX_HEADER_BLOCK_BYTES` 431, in the JSON envelope. Tornado reads the head up to
  :data:`HEAD_READ_CAP_BYTES` (past it, it closes the connection unanswered).
- A declared body (``Content-Length``) over ``MAX_CONTENT_LENGTH`` is answered 413 in the
  JSON envelope at once, without reading it; a chunked body is counted as it arrives and
  answered 413 once over the limit (read and dropped up to :data:`CHUNKED_DRAIN_MAX_BYTES`).
- An ``x-www-form-urlencoded`` body of more than ``MAX_URLENCODED_FIELDS`` fields is
  answered 400 (``BAD_REQUEST``) without reaching any handler: its ``&`` are counted as the
  chunks arrive, before anything parses it (Flask spent seconds on 600,000 fields).
- An answer made at once before the request is read (413, 414, 431) carries
  ``Connection: close``; the connection then lingers (reads and drops, at most
  :data:`REFUSAL_LINGER_SECS` and :data:`REFUSAL_LINGER_MAX_BYTES`) so that the client,
  still sending, reads the answer instead of a reset.
- Every native handler's answer carries :data:`SECURITY_HEADERS` and no
  ``Server`` banner with a version.
- A client connection has Nagle's algorithm off from its first byte to its close
  (:func:`keep_nodelay`), not toggled twice per request.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import tornado.web
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream, StreamClosedError

from async_handlers.lean_get import envelope_response, write_envelope
from wsgi_app import errors
from wsgi_app.http_common import MAX_URLENCODED_FIELDS, REQUEST_ID_HEADER, SECURITY_HEADERS
from wsgi_app.private_apis import apply_proxy_headers, peer_address, unapply_proxy_headers
from wsgi_app.trusted_proxies import Network, is_trusted

MAX_REQUEST_TARGET_BYTES = 64 * 1024
MAX_HEADER_BLOCK_BYTES = 64 * 1024
HEAD_READ_CAP_BYTES = 1024 * 1024
CHUNKED_DRAIN_MAX_BYTES = 64 * 1024 * 1024
REFUSAL_LINGER_SECS = 2.0
REFUSAL_LINGER_MAX_BYTES = 1024 * 1024
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# The headers Tornado's _apply_xheaders reads.
_XHEADERS = ("X-Forwarded-For", "X-Real-Ip", "X-Scheme", "X-Forwarded-Proto")
_lingering: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references


def _head_refusal(
    start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders
) -> errors.ErrorSpec | None:
    """414 for a request target, 431 for a header block, over the limits; else None."""
    if len(start_line.path) > MAX_REQUEST_TARGET_BYTES:
        return errors.URI_TOO_LONG
    size = 0
    for name, value in headers.get_all():
        size += len(name) + len(value) + 4  # "name: value\r\n"
    return errors.HEADERS_TOO_LARGE if size > MAX_HEADER_BLOCK_BYTES else None


def _drop_underscored_names(headers: httputil.HTTPHeaders) -> None:
    for name in [name for name in headers if "_" in name]:
        del headers[name]


def refuse_and_close(connection: Any, spec: errors.ErrorSpec) -> None:
    """Answer ``spec``'s envelope on a request whose body (if any) is not read, and close.

    Called from ``headers_received`` (the only time Tornado lets a delegate detach the stream)."""
    stream: IOStream = connection.detach()
    if stream.closed():  # the client already hung up (its FIN came with the head)
        return
    line, out_headers, body = envelope_response(spec)
    out_headers["Connection"] = "close"
    head = f"HTTP/1.1 {line.code} {line.reason}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in out_headers.get_all()
    )
    task = asyncio.get_running_loop().create_task(
        _answer_then_linger(stream, head.encode("latin-1") + b"\r\n" + body)
    )
    _lingering.add(task)
    task.add_done_callback(_lingering.discard)


async def _answer_then_linger(stream: IOStream, answer: bytes) -> None:
    """Write ``answer``, end our side, then read and drop what the client still sends (bounded)
    before closing: closing with unread data would send a reset that can destroy the answer."""
    try:
        await stream.write(answer)
        stream.socket.shutdown(socket.SHUT_WR)
        dropped = 0
        async with asyncio.timeout(REFUSAL_LINGER_SECS):
            while dropped < REFUSAL_LINGER_MAX_BYTES:
                dropped += len(await stream.read_bytes(65536, partial=True))
    except (StreamClosedError, OSError, TimeoutError):
        pass
    finally:
        stream.close()


class SecurityHeadersTransform(tornado.web.OutputTransform):
    """Adds :data:`SECURITY_HEADERS` (nosniff, no-store) to every native handler's answer and drops
    Tornado's ``Server: TornadoServer/<version>`` banner."""

    def transform_first_chunk(
        self, status_code: int, headers: httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        if "Server" in headers:
            del headers["Server"]
        return status_code, headers, chunk


class _GuardAdapter(httputil.HTTPMessageDelegate):
    """Per request, before any handler: the refusals of the module docstring, and the proxy
    headers believed only from a trusted proxy."""

    def __init__(
        self,
        delegate: httputil.HTTPMessageDelegate,
        request_conn: Any,
        trusted: tuple[Network, ...],
        max_body_bytes: int,
    ) -> None:
        self.delegate = delegate
        self.connection = request_conn
        self.trusted = trusted
        self.max_body_bytes = max_body_bytes
        self.xheaders_applied = False
        self.refusal: errors.ErrorSpec | None = None  # answered at finish (the body read, dropped)
        self.received_bytes = 0
        self.count_fields = False
        self.separators = 0

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> Any:
        _drop_underscored_names(headers)
        refusal = _head_refusal(start_line, headers)
        if refusal is not None:
            refuse_and_close(self.connection, refusal)
            return None
        if is_trusted(peer_address(self.connection), self.trusted):
            # Without these headers Tornado's rewrite changes nothing (and costs a getaddrinfo).
            if any(name in headers for name in _XHEADERS):
                apply_proxy_headers(self.connection, headers)
                self.xheaders_applied = True
        elif REQUEST_ID_HEADER in headers:
            # A trusted proxy's request id lets its resend of a signed request pass the nonce
            # check (auth_core); from anyone else it would let a captured request be replayed.
            del headers[REQUEST_ID_HEADER]
        declared = headers.get("Content-Length", "")
        # ASCII digits only: str.isdigit() also takes '²' (a Latin-1 header byte), which int()
        # refuses; Tornado answers any other malformed length with its 400.
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            refuse_and_close(self.connection, errors.PAYLOAD_TOO_LARGE)
            return None
        content_type = headers.get("Content-Type")
        if content_type is not None:
            self.count_fields = content_type.partition(";")[0].strip().lower() == FORM_CONTENT_TYPE
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        if self.refusal is not None:
            return None
        self.received_bytes += len(chunk)
        if self.received_bytes > self.max_body_bytes:  # a chunked body has no Content-Length
            self.refusal = errors.PAYLOAD_TOO_LARGE
            return None
        if self.count_fields:
            self.separators += chunk.count(b"&")
            if self.separators >= MAX_URLENCODED_FIELDS:  # as parse_qsl counts: one more field than '&'
                self.refusal = errors.BAD_REQUEST
                return None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        if self.refusal is not None:
            write_envelope(self.connection, self.refusal)
        else:
            self.delegate.finish()
        self._cleanup()

    def on_connection_close(self) -> None:
        if self.refusal is None:
            self.delegate.on_connection_close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.xheaders_applied:
            unapply_proxy_headers(self.connection)
            self.xheaders_applied = False


def keep_nodelay(stream: IOStream) -> None:
    """Nagle's algorithm off for the whole connection, once.

    Tornado turns it off as each answer finishes and back on after it: two
    ``setsockopt`` calls (and a ``socket.family`` enum conversion each) per request,
    ~2% of a nearby page's CPU (bench/nearby_profile.md). Answers are written whole
    or in large chunks, and Tornado turned Nagle off before each answer's last write
    anyway: all it could still coalesce were a streamed answer's earlier chunks. A
    stream handed back after a detached answer keeps it off too."""
    stream.set_nodelay(True)
    stream.set_nodelay = _no_op  # type: ignore[method-assign]


def _no_op(value: bool) -> None:
    return None


class GuardedHTTPServer(HTTPServer):
    """``HTTPServer`` whose proxy headers count only from ``TRUSTED_PROXIES`` (``xheaders=True``
    would believe anyone) and whose oversized bodies get a JSON 413 (not a bare 400)."""

    def initialize(  # type: ignore[override]
        self, *args: Any, trusted: tuple[Network, ...] = (), max_body_bytes: int, **kwargs: Any
    ) -> None:
        proxies = [str(network.network_address) for network in trusted]
        # Tornado's own limits close the connection or answer a bare 400; ours (max_body_bytes,
        # the head limits) answer in the envelope below them.
        kwargs["max_body_size"] = max(kwargs.get("max_body_size") or 0, CHUNKED_DRAIN_MAX_BYTES)
        kwargs["max_header_size"] = HEAD_READ_CAP_BYTES
        kwargs.update(xheaders=False, trusted_downstream=proxies)
        super().initialize(*args, **kwargs)
        self.trusted = trusted
        self.max_body_bytes = max_body_bytes

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> Any:
        delegate = super().start_request(server_conn, request_conn)
        return _GuardAdapter(delegate, request_conn, self.trusted, self.max_body_bytes)
