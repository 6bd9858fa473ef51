"""Routing of a Tornado process by path, with one cheap request object per WSGI request.

Tornado's ``RuleRouter`` builds an ``HTTPServerRequest`` to match the path, and
its adapter for a callable target (the WSGI container) builds a second one:
each parses the query string into ``arguments`` and deep-copies it into
``query_arguments``, and the adapter then parses a form body into
``body_arguments``. The WSGI container uses none of that: it passes the raw
query string and body to Flask, which parses them itself. Together that was a
visible share of a cached profile read's CPU.

:class:`PathDispatch` matches the path of the request line before any request
object exists: native paths go to the ``RuleRouter`` of the native handlers
(unchanged: their handlers read ``arguments``); every other path gets one
:class:`~async_handlers.lean_get.RawQueryRequest`, which leaves the query string unparsed, and its body is
handed over unparsed.

Invariants:

* a query string with more fields than Tornado's limit
  (``ParseUrlencodedConfig.max_arguments``) is still refused before the
  request reaches Flask, as when Tornado parsed it, but with ``BAD_REQUEST``'s
  JSON envelope on a connection that stays open (``RawRequestReader``), not
  Tornado's bare 400 and a close;
* the path is matched exactly as ``PathMatches`` would (``re.match`` on the
  path without the query string);
* admission comes first (``admission``, :mod:`async_handlers.admission`): a request
  the process cannot answer in time is refused from its request line, before any
  other delegate, body parsing, Redis or database work;
* a native path may have a fast path (``fast_paths``: the long-poll's parking,
  :class:`async_handlers.chat_poll.PollParking`): it is asked first and takes
  the request by returning a delegate, or leaves it to the native router (None).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from tornado import httputil

from async_handlers.admission import REQUEST_START_HEADER, Admission, RefusedRequest
from async_handlers.lean_get import RawQueryRequest, RawRequestReader

# (server connection, request connection, request line) -> the request's delegate, or None.
FastPath = Callable[
    [object, httputil.HTTPConnection, httputil.RequestStartLine], httputil.HTTPMessageDelegate | None
]


class _WsgiDelegate(RawRequestReader):
    """Collects the body and hands the request to the WSGI container (no form parsing)."""

    def __init__(
        self,
        container: Callable[[httputil.HTTPServerRequest], None],
        server_conn: object,
        request_conn: httputil.HTTPConnection,
    ) -> None:
        super().__init__(server_conn, request_conn)
        self.container = container

    def handle(self, request: RawQueryRequest) -> None:
        self.container(request)


class _Dispatching(httputil.HTTPMessageDelegate):
    """One request: picks its delegate from the request line, then forwards everything to it."""

    def __init__(
        self, dispatch: PathDispatch, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> None:
        self.dispatch = dispatch
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.delegate: httputil.HTTPMessageDelegate | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        dispatch = self.dispatch
        path = start_line.path.partition("?")[0]
        native = dispatch.native_paths.match(path) is not None
        admission = dispatch.admission
        if admission is not None and admission.refusal(
            start_line.method, path, native, headers.get(REQUEST_START_HEADER)
        ):
            self.delegate = RefusedRequest(self.request_conn)
        elif native:
            fast = dispatch.fast_paths.get(path)
            self.delegate = fast(self.server_conn, self.request_conn, start_line) if fast else None
            if self.delegate is None:
                self.delegate = dispatch.native_router.start_request(self.server_conn, self.request_conn)
        else:
            self.delegate = _WsgiDelegate(dispatch.container, self.server_conn, self.request_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


class PathDispatch(httputil.HTTPServerConnectionDelegate):
    """Native paths to ``native_router``; all others to ``container`` (a WSGI container)."""

    def __init__(
        self,
        native_paths: re.Pattern[str],
        native_router: httputil.HTTPServerConnectionDelegate,
        container: Callable[[httputil.HTTPServerRequest], None],
        fast_paths: Mapping[str, FastPath] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.native_paths = native_paths
        self.native_router = native_router
        self.container = container
        self.fast_paths = dict(fast_paths or {})
        self.admission = admission

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> _Dispatching:
        return _Dispatching(self, server_conn, request_conn)
