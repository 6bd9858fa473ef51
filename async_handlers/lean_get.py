"""A native GET answered without a ``RequestHandler``: Tornado reads the request, one task answers.

At concurrency 16 a nearby page spent ~20% of its CPU in Tornado's per-request
handler machinery, not in HTTP/1 itself: the routing's ``HTTPServerRequest`` (its
query parsed, then deep-copied), the ``RequestHandler`` (headers cleared and set,
``prepare``), the ``_execute`` coroutine and its Task, ``finish``/``flush`` with the
output transform and the ETag check (bench/nearby_profile.md). A path with a lean
answer gets, through ``tornado_dispatch.PathDispatch``'s ``fast_paths``, a
:class:`LeanGet` per GET instead: the request is read as Tornado reads it (a
:class:`RawQueryRequest`: Host checks, the query's field limit), its parameters
decoded once (:func:`async_handlers.base.params_of`), ``answer`` runs as one task, and
the answer goes out on the same HTTP/1 connection (Tornado decides keep-alive and
writes ``Connection`` as it does for a handler).

Invariants, those of :class:`async_handlers.base.NativeApiHandler`'s answers:

- every answer carries ``Content-Type`` (JSON), ``X-Request-Id``, the CORS headers
  for an allowed ``Origin``, ``SECURITY_HEADERS``, ``Date`` and ``Content-Length``,
  and no ``Server`` banner (:func:`async_handlers.base.answer_headers`);
- a failure is answered from the one error table (``render_failure``): an
  :class:`~wsgi_app.errors.ApiError` as its envelope, anything else logged and a 500
  envelope, never a bare error page;
- every answer is counted (``metrics.observe_request``) and logged (``log_access``)
  with the caller ``answer`` noted (:attr:`LeanCall.user_id`);
- only a GET while the process is not draining: anything else (the ``OPTIONS``
  preflight, the drain's refusal) takes the ordinary route.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.client import responses
from typing import Any
from urllib.parse import parse_qsl

from tornado import httputil
from tornado.escape import parse_qs_bytes

from async_handlers.base import JSON_CONTENT_TYPE, NativeContext, answer_headers, params_of, render_failure
from wsgi_app import errors, metrics
from wsgi_app.http_common import (
    MAX_URLENCODED_FIELDS,
    REQUEST_ID_HEADER,
    SECURITY_HEADERS,
    log_access,
    request_id_from,
)
from wsgi_app.params import merge_request_params


def http_date() -> str:
    """The ``Date`` header's value now, formatted once per second (``email.utils`` formatting
    cost ~2% of a nearby page)."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, httputil.format_timestamp(now)]
    return str(_date[1])


_date: list[int | str] = [0, ""]


class RawQueryRequest(httputil.HTTPServerRequest):
    """An ``HTTPServerRequest`` whose query string is kept raw (``arguments`` stay empty):
    Tornado's own parses it into ``arguments`` and deep-copies that into ``query_arguments``.
    A query with more than ``MAX_URLENCODED_FIELDS`` fields is refused (``HTTPInputError``, which
    :class:`RawRequestReader` answers with a JSON 400)."""

    def __init__(
        self, connection: httputil.HTTPConnection, start_line: httputil.RequestStartLine, **kwargs: Any
    ) -> None:
        path, _, query = start_line.path.partition("?")
        if query and query.count("&") + 1 > MAX_URLENCODED_FIELDS:  # as urllib's parse_qsl counts
            raise httputil.HTTPInputError("Invalid query string: too many fields")
        bare = httputil.RequestStartLine(start_line.method, path, start_line.version)
        super().__init__(connection=connection, start_line=bare, **kwargs)
        self.uri = start_line.path
        self.query = query

    def parse_query(self) -> None:
        """``query_arguments`` as Tornado's request fills them (``arguments`` stay empty)."""
        try:
            self.query_arguments = parse_qs_bytes(
                self.query, keep_blank_values=True, max_num_fields=MAX_URLENCODED_FIELDS
            )
        except Exception as e:
            raise httputil.HTTPInputError(f"Invalid query string: {e}") from e


def envelope_response(
    spec: errors.ErrorSpec,
) -> tuple[httputil.ResponseStartLine, httputil.HTTPHeaders, bytes]:
    """``spec``'s JSON envelope with the security headers, for an answer made outside any
    handler (a request never made, the edge guard's 413)."""
    payload = errors.dumps_envelope(errors.error_body(spec)).encode()
    headers = httputil.HTTPHeaders(
        {"Content-Type": JSON_CONTENT_TYPE, **SECURITY_HEADERS, "Content-Length": str(len(payload))}
    )
    headers["Date"] = http_date()
    return httputil.ResponseStartLine("HTTP/1.1", spec.http_status, spec.name), headers, payload


def write_envelope(connection: httputil.HTTPConnection, spec: errors.ErrorSpec) -> None:
    """Answer ``spec``'s :func:`envelope_response` on ``connection``."""
    connection.write_headers(*envelope_response(spec))
    connection.finish()


def lean_params(request: RawQueryRequest) -> dict[str, str]:
    """The request's parameters, exactly as :func:`async_handlers.base.params_of` reads them.

    A bodiless request whose names are ASCII is read by one ``parse_qsl`` (UTF-8, strict):
    the same pairs as Tornado's parsing (names as Latin-1, values as bytes) and ``params_of``'s
    UTF-8 decoding, without building both. Anything else (a body, a non-ASCII name, bytes that
    are not UTF-8) takes ``params_of``, which also words its errors."""
    if not request.body and request.query.isascii():
        try:
            pairs = parse_qsl(request.query, keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            pairs = None
        if pairs is not None and all(name.isascii() for name, _ in pairs):
            return merge_request_params(pairs, ())
    request.parse_query()
    return params_of(request)


@dataclass(slots=True)
class LeanCall:
    """What ``answer`` gets of a request (its parameters, decoded once), and the caller it
    found (for the access log)."""

    request: httputil.HTTPServerRequest
    params: dict[str, str]
    user_id: int | None = field(default=None)


# (context, the call) -> the answer's JSON envelope (raises for a failure)
Answer = Callable[[NativeContext, LeanCall], Awaitable[str]]


class LeanPath:
    """The fast path of one native GET route (``PathDispatch.fast_paths[path]``)."""

    def __init__(
        self, context: NativeContext, path: str, answer: Answer, is_draining: Callable[[], bool]
    ) -> None:
        self.context = context
        self.path = path
        self.answer = answer
        self.is_draining = is_draining

    def start(
        self,
        server_conn: object,
        request_conn: httputil.HTTPConnection,
        start_line: httputil.RequestStartLine,
    ) -> httputil.HTTPMessageDelegate | None:
        """A :class:`LeanGet` for a GET; None (the ordinary route) for any other method or when draining."""
        if start_line.method != "GET" or self.is_draining():
            return None
        return LeanGet(self, server_conn, request_conn)


class RawRequestReader(httputil.HTTPMessageDelegate):
    """Reads one request as a :class:`RawQueryRequest` (its body collected, unparsed) and
    hands it to :meth:`handle` once whole. A request line no request object can be made of
    (a query of more than ``MAX_URLENCODED_FIELDS`` fields) is answered with ``BAD_REQUEST``'s envelope, on a
    connection that stays usable, instead of Tornado's bare 400 and a close."""

    def __init__(self, server_conn: object, request_conn: httputil.HTTPConnection) -> None:
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.request: RawQueryRequest | None = None
        self.chunks: list[bytes] = []
        self.refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        try:  # built now, while the guard's proxy headers apply (remote_ip)
            self.request = RawQueryRequest(
                self.request_conn, start_line, headers=headers, server_connection=self.server_conn
            )
        except httputil.HTTPInputError:
            self.refused = True  # the body is still read (and dropped), then answered

    def data_received(self, chunk: bytes) -> None:
        if not self.refused:
            self.chunks.append(chunk)

    def finish(self) -> None:
        if self.refused:
            write_envelope(self.request_conn, errors.BAD_REQUEST)
            return
        request, self.request = self.request, None
        assert request is not None
        request.body, self.chunks = b"".join(self.chunks), []
        self.handle(request)

    def on_connection_close(self) -> None:
        self.request, self.chunks = None, []

    def handle(self, request: RawQueryRequest) -> None:
        raise NotImplementedError


class LeanGet(RawRequestReader):
    """One GET: read by Tornado, answered by ``path.answer`` in one task."""

    def __init__(self, path: LeanPath, server_conn: object, request_conn: httputil.HTTPConnection) -> None:
        super().__init__(server_conn, request_conn)
        self.path = path
        self.task: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference

    def handle(self, request: RawQueryRequest) -> None:
        self.task = asyncio.get_running_loop().create_task(self._serve(request))

    async def _serve(self, request: RawQueryRequest) -> None:
        path = self.path
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        user_id: int | None = None
        status, spec = 200, None
        extra: dict[str, str] = {}
        try:
            call = LeanCall(request, lean_params(request))  # a bad body or encoding: its 4xx first
            try:
                body = await path.answer(path.context, call)
            finally:
                user_id = call.user_id
        except Exception as exc:  # answered from the one error table, like any native handler
            spec, status, extra, body = render_failure(exc, 500, request_id)
        elapsed = request.request_time()
        metrics.observe_request(path.path, "GET", status, spec.code if spec else None, elapsed)
        log_access("GET", path.path, status, 1000.0 * elapsed, request_id, request.remote_ip, user_id, spec)
        payload = body.encode()
        headers = httputil.HTTPHeaders(
            {
                **SECURITY_HEADERS,  # as the handlers' output transform: unless the answer sets them
                **answer_headers(path.context, request.headers.get("Origin"), request_id),
                **extra,
            }
        )
        headers["Content-Length"] = str(len(payload))
        headers["Date"] = http_date()
        connection = self.request_conn
        connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", status, responses.get(status, "Unknown")), headers, payload
        )
        connection.finish()
