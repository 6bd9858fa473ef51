"""Per-request hooks of the Flask side: request id, CORS, access log and metrics, session clean-up.

The API keeps no cookie session (callers sign requests and carry tokens), so
Flask's session is switched off (:class:`NoCookieSession`): no serializer is
built and no ``Cookie`` header parsed per request.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask.sessions import SessionInterface

from wsgi_app import metrics
from wsgi_app.http_common import REQUEST_ID_HEADER, cors_headers, log_access, request_id_from


def _start_request() -> Response | None:
    g.started_at = time.perf_counter()
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        return Response(status=204)  # CORS preflight: headers added in _finish_request
    return None


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
    for name, value in cors_headers(
        request.headers.get("Origin"), current_app.config["CORS_ORIGINS"]
    ).items():
        response.headers[name] = value
    caller = g.get("caller")
    duration_secs = time.perf_counter() - g.get("started_at", time.perf_counter())
    error = g.get("error_spec")
    endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics.observe_request(
        endpoint, request.method, response.status_code, error and error.code, duration_secs
    )
    log_access(
        request.method,
        request.path,
        response.status_code,
        duration_secs * 1000.0,
        g.get("request_id", "-"),
        request.remote_addr,
        caller.user_id if caller is not None else None,
        error,
    )
    return response


class NoCookieSession(SessionInterface):
    """No Flask session: ``flask.session`` is a null session (writing to it raises)."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None


def register_hooks(app: Flask) -> None:
    app.session_interface = NoCookieSession()
    app.before_request(_start_request)
    app.after_request(_finish_request)
