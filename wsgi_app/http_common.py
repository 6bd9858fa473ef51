"""HTTP details both sides share: request ids, CORS headers, security headers, the access-log line."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

access_log = logging.getLogger("datingtoday.access")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._\-]{1,64}")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, X-Request-Id"
CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_MAX_AGE_SECS = 600
# On every API answer, Flask and native alike: never sniff a type, never keep a copy (answers carry
# tokens, SMS codes and private data). Served files set their own Cache-Control.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def request_id_from(incoming: str | None) -> str:
    """Keep a well-formed incoming id (from nginx or the client); otherwise make one."""
    if incoming and _REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


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
) -> None:
    access_log.info(
        "%s %s %d %.1fms rid=%s ip=%s uid=%s",
        method,
        path,
        status,
        duration_ms,
        request_id,
        remote_ip or "-",
        user_id if user_id is not None else "-",
    )


def with_security_headers(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: :data:`SECURITY_HEADERS` on every answer (a header already set wins)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def add_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend((n, v) for n, v in SECURITY_HEADERS.items() if n.lower() not in present)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, add_headers)

    return app
