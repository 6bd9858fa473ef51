"""The HTTP edge of a Tornado process, before any handler runs.

Invariants:
- ``X-Real-IP`` / ``X-Forwarded-For`` change the client address only when the
  TCP peer is in ``TRUSTED_PROXIES`` (Tornado's ``xheaders=True`` believes anyone).
- A body over ``MAX_CONTENT_LENGTH`` is answered 413 in the JSON envelope
  (Tornado alone answers a bare 400): up to :data:`OVERSIZE_DRAIN_MAX_BYTES` it
  is read and dropped so the client sees the answer (a chunked body is counted
  as it arrives); a larger declared length is answered at once and the
  connection closed.
- ``X-Request-Id`` (which also marks a resend as a retry) counts only from a trusted proxy.
- Every native handler's answer carries :data:`SECURITY_HEADERS` and no
  ``Server`` banner with a version.
- A client connection has Nagle's algorithm off from its first byte to its close
  (:func:`keep_nodelay`), not toggled twice per request.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream

from async_handlers.lean_get import envelope_response, write_envelope
from wsgi_app import errors
from wsgi_app.http_common import REQUEST_ID_HEADER, SECURITY_HEADERS
from wsgi_app.trusted_proxies import Network, is_trusted

OVERSIZE_DRAIN_MAX_BYTES = 64 * 1024 * 1024
# The headers Tornado's _apply_xheaders reads.
_XHEADERS = ("X-Forwarded-For", "X-Real-Ip", "X-Scheme", "X-Forwarded-Proto")


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
    """Per request, before any handler: believe X-Real-IP / X-Forwarded-For only from a trusted
    proxy, and answer a declared body over the limit with a 413 in the JSON envelope."""

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
        self.too_large = False
        self.received_bytes = 0

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> Any:
        context = self.connection.context
        if is_trusted(getattr(context, "remote_ip", None), self.trusted):
            # Without these headers Tornado's rewrite changes nothing (and costs a getaddrinfo).
            if any(name in headers for name in _XHEADERS):
                context._apply_xheaders(headers)
                self.xheaders_applied = True
        elif REQUEST_ID_HEADER in headers:
            # A trusted proxy's request id lets its resend of a signed request pass the nonce
            # check (auth_core); from anyone else it would let a captured request be replayed.
            del headers[REQUEST_ID_HEADER]
        declared = headers.get("Content-Length", "")
        # ASCII digits only: str.isdigit() also takes '²' (a Latin-1 header byte), which int()
        # refuses; Tornado answers any other malformed length with its 400.
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            self.too_large = True
            if int(declared) <= OVERSIZE_DRAIN_MAX_BYTES:
                self.connection.set_max_body_size(int(declared))  # read it, drop it, answer 413
                return None
            stream = self.connection.detach()  # far too large to read: answer and hang up
            if stream.closed():  # the client already hung up (its FIN came with the headers)
                return None
            line, out_headers, body = envelope_response(errors.PAYLOAD_TOO_LARGE)
            out_headers["Connection"] = "close"
            head = f"HTTP/1.1 {line.code} {line.reason}\r\n" + "".join(
                f"{name}: {value}\r\n" for name, value in out_headers.get_all()
            )
            stream.write(head.encode("latin-1") + b"\r\n" + body).add_done_callback(lambda _: stream.close())
            return None
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        if self.too_large:
            return None
        self.received_bytes += len(chunk)
        if self.received_bytes > self.max_body_bytes:  # a chunked body has no Content-Length
            self.too_large = True
            return None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        if self.too_large:
            write_envelope(self.connection, errors.PAYLOAD_TOO_LARGE)
        else:
            self.delegate.finish()
        self._cleanup()

    def on_connection_close(self) -> None:
        if not self.too_large:
            self.delegate.on_connection_close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.xheaders_applied:
            self.connection.context._unapply_xheaders()
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
        # Tornado's own limit answers a bare 400; ours (max_body_bytes) answers 413 below it.
        kwargs["max_body_size"] = max(kwargs.get("max_body_size") or 0, OVERSIZE_DRAIN_MAX_BYTES)
        kwargs.update(xheaders=False, trusted_downstream=proxies)
        super().initialize(*args, **kwargs)
        self.trusted = trusted
        self.max_body_bytes = max_body_bytes

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> Any:
        delegate = super().start_request(server_conn, request_conn)
        return _GuardAdapter(delegate, request_conn, self.trusted, self.max_body_bytes)
