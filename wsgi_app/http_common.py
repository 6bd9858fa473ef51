"""HTTP details both sides share: request ids, CORS headers, security headers, the access-log line.

The access line names the error code of every failure, the user id and the
duration, identically for Flask and the native handlers.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from wsgi_app.errors import ErrorSpec
from wsgi_app.logging_setup import ACCESS_FIELDS_ATTR

access_log = logging.getLogger("datingtoday.access")

REQUEST_ID_HEADER = "X-Request-Id"
# Fields of a query string or an x-www-form-urlencoded body (Tornado's own default): a request
# with more is refused at the edge (400), before anything parses it.
MAX_URLENCODED_FIELDS = 1000
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._\-]{1,64}")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, X-Request-Id"
CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_MAX_AGE_SECS = 600
# Under `flask run` a 404 on a native path (wsgi_app.native_endpoints) says which server to start.
NATIVE_PATH_HINT = "{path} is served by tornado_server.py (./scripts/run.sh), not by `flask run`"
# On every API answer, Flask and native alike: never sniff a type, never keep a copy (answers carry
# tokens, SMS codes and private data). Served files set their own Cache-Control.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


# Made ids: 16 random hex digits per process, then a counter (16 hex digits): unique
# without a getrandom() call per request (uuid4 was a visible share of a cached read).
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(secrets.randbelow(1 << 32))


def request_id_from(incoming: str | None) -> str:
    """Keep a well-formed incoming id (from nginx or the client); otherwise make one (32 hex digits)."""
    if incoming and _REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def cors_headers(origin: str | None, allowed_origins: Sequence[str]) -> dict[str, str]:
    """Headers granting ``origin`` access, or none when it is not on the allow-list."""
    if not origin or not (origin in allowed_origins or "*" in allowed_origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
        "Access-Control-Expose-Headers": REQUEST_ID_HEADER,
        "Access-Control-Max-Age": str(CORS_MAX_AGE_SECS),
        "Vary": "Origin",
    }


def log_access(
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    request_id: str,
    remote_ip: str | None,
    user_id: int | None,
    error: ErrorSpec | None = None,
) -> None:
    """One line per request: ``GET /api/user/show 401 3.1ms err=506:sign_invalid rid=.. ip=.. uid=-``.

    ``path`` never carries the query string; ``error`` is the envelope error the
    request was answered with (``err=-`` on success). The same values go to
    the JSON log format as keys (``logging_setup.ACCESS_FIELDS_ATTR``).
    """
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 1),
        "error_code": error.code if error else None,
        "error_name": error.name if error else None,
        "request_id": request_id,
        "ip": remote_ip,
        "user_id": user_id,
    }
    access_log.info(
        "%s %s %d %.1fms err=%s rid=%s ip=%s uid=%s",
        method,
        path,
        status,
        duration_ms,
        f"{error.code}:{error.name}" if error else "-",
        request_id,
        remote_ip or "-",
        user_id if user_id is not None else "-",
        extra={ACCESS_FIELDS_ATTR: fields},
    )


_SECURITY_NAMES = frozenset(name.lower() for name in SECURITY_HEADERS)
_SECURITY_ITEMS = tuple(SECURITY_HEADERS.items())


def with_security_headers(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: :data:`SECURITY_HEADERS` on every answer (a header already set wins)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def add_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(name.lower() in _SECURITY_NAMES for name, _ in headers):
                present = {name.lower() for name, _ in headers}
                headers.extend((n, v) for n, v in SECURITY_HEADERS.items() if n.lower() not in present)
            else:
                headers.extend(_SECURITY_ITEMS)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, add_headers)

    return app
