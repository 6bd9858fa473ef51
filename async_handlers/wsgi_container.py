"""The WSGI container of ``tornado_server.py``: each Flask request as ONE job on the WSGI pool.

Tornado's own container submits the app call and every body chunk as separate
jobs on the executor's FIFO queue, so under load responses finish late and in
bulk (tornadoweb/tornado#3299). Here the whole WSGI call (call, iterate, close)
is one job. Before it, the request check's Redis round trip is made on the
loop (:mod:`async_handlers.wsgi_precheck`); a request whose view will then make
no I/O call runs on the loop instead of the pool.

Invariants: every request is answered; a failure outside Flask's own error handling
(any exception) is answered with the JSON envelope of
:func:`wsgi_app.failures.failure_spec` (never a trace), a ``Host`` whose port is not
a number (no WSGI environ can be built) with ``BAD_REQUEST``'s; a
request that reaches a pool already shut down (it cannot, by the drain's
ordering) gets a retryable 503; access logging is the Flask app's job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import responses
from typing import Any

from tornado import httputil
from tornado.ioloop import IOLoop
from tornado.wsgi import WSGIContainer

from async_handlers.wsgi_precheck import WsgiPrecheck
from wsgi_app import errors
from wsgi_app.failures import failure_spec
from wsgi_app.http_common import SECURITY_HEADERS

log = logging.getLogger("datingtoday.server")
WsgiResult = tuple[str, list[tuple[str, str]], bytes]


def run_wsgi_app(app: Callable[..., Any], environ: dict[str, Any]) -> WsgiResult:
    """One whole WSGI call: start it, drain the body, close it."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        if hasattr(result, "close"):
            result.close()
    if "status" not in captured:
        raise RuntimeError("WSGI app did not call start_response")
    return captured["status"], captured["headers"], b"".join(chunks)


def error_answer(spec: errors.ErrorSpec, *extra: tuple[str, str]) -> WsgiResult:
    """The JSON envelope of ``spec`` as a WSGI result (an answer made outside Flask)."""
    status = f"{spec.http_status} {responses.get(spec.http_status, 'Error')}"
    headers = [("Content-Type", "application/json"), *extra, *SECURITY_HEADERS.items()]
    return status, headers, errors.dumps_envelope(errors.error_body(spec)).encode()


class WholeCallWSGIContainer(WSGIContainer):
    """``WSGIContainer`` that runs each request as a single executor job (see the module)."""

    def __init__(
        self,
        wsgi_application: Callable[..., Any],
        executor: ThreadPoolExecutor,
        precheck: WsgiPrecheck | None = None,
    ) -> None:
        super().__init__(wsgi_application, executor)
        self.precheck = precheck

    async def handle_request(self, request: httputil.HTTPServerRequest) -> None:
        try:
            environ = self.environ(request)
        except ValueError:  # a Host whose port is not a number: tornado.wsgi's int() of it
            write_answer(request, error_answer(errors.BAD_REQUEST))
            return
        # The request check's Redis round trip, on the loop; a view that will then make
        # no I/O call (a cache hit, an error) runs here too, without the thread hop.
        no_io = self.precheck is not None and await self.precheck(environ, request.body)
        try:
            if no_io:
                status, headers, body = run_wsgi_app(self.wsgi_application, environ)
            else:
                status, headers, body = await IOLoop.current().run_in_executor(
                    self.executor, run_wsgi_app, self.wsgi_application, environ
                )
        except Exception as exc:
            if isinstance(exc, RuntimeError) and "after shutdown" in str(exc):
                # Cannot happen with the drain's ordering; if it ever does, a retryable 503.
                status, headers, body = error_answer(errors.SHUTTING_DOWN, ("Connection", "close"))
            else:
                log.exception("WSGI call failed outside Flask's error handling")
                status, headers, body = error_answer(failure_spec(exc))
        write_answer(request, (status, headers, body))


def write_answer(request: httputil.HTTPServerRequest, result: WsgiResult) -> None:
    """Write ``result`` (a WSGI status, headers, body) as the request's answer."""
    status, headers, body = result
    code_text, reason = status.split(" ", 1)
    header_obj = httputil.HTTPHeaders()
    for name, value in headers:
        header_obj.add(name, value)
    if "Content-Length" not in header_obj and int(code_text) != 304:
        header_obj["Content-Length"] = str(len(body))
    assert request.connection is not None
    request.connection.write_headers(
        httputil.ResponseStartLine("HTTP/1.1", int(code_text), reason), header_obj, chunk=body
    )
    request.connection.finish()
