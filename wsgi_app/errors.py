"""The one error table of the API and the JSON envelope shared by Flask and Tornado.

Every failure anywhere in the service is an :class:`ApiError` carrying an
:class:`ErrorSpec` from this module. The envelope functions are framework-free:
the Flask error handlers (``wsgi_app.api.error_handlers``) and the native
Tornado handlers (``async_handlers.base``) both render through them.

Codes 300 and 501-505 keep the meaning the original DatingToday API gave
them; the others are ours and documented in ``docs/api.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorSpec:
    """One row of the error table: envelope code, HTTP status, default message."""

    code: int
    http_status: int
    name: str
    message: str


_TABLE: dict[int, ErrorSpec] = {}


def _spec(code: int, http_status: int, name: str, message: str) -> ErrorSpec:
    if code in _TABLE:
        raise ValueError(f"error code {code} defined twice")
    spec = ErrorSpec(code, http_status, name, message)
    _TABLE[code] = spec
    return spec


# Codes inherited from the original API (their meaning is part of the contract).
PARAM_INVALID = _spec(300, 400, "param_invalid", "missing or malformed parameter")
USER_NOT_FOUND = _spec(501, 404, "user_not_found", "user not found")
LATLNG_INVALID = _spec(502, 400, "latlng_invalid", "malformed latlng")
SMS_CODE_INVALID = _spec(503, 401, "sms_code_invalid", "wrong or expired sms code")
TOKEN_INVALID = _spec(504, 401, "token_invalid", "token missing, invalid or expired")
NICKNAME_INVALID = _spec(505, 400, "nickname_invalid", "invalid nickname")

# Request signing (the original used 500 for a bad sign; that clashed with crashes).
SIGN_INVALID = _spec(506, 401, "sign_invalid", "signature does not match")
APPKEY_UNKNOWN = _spec(507, 401, "appkey_unknown", "unknown appkey")
TIMESTAMP_OUT_OF_WINDOW = _spec(508, 401, "timestamp_out_of_window", "timestamp too old or too far ahead")
NONCE_REPLAYED = _spec(509, 409, "nonce_replayed", "nonce already used")

# Generic transport and server errors: the envelope code equals the HTTP status.
BAD_REQUEST = _spec(400, 400, "bad_request", "malformed request")
FORBIDDEN = _spec(403, 403, "forbidden", "not allowed")
NOT_FOUND = _spec(404, 404, "not_found", "no such endpoint")
METHOD_NOT_ALLOWED = _spec(405, 405, "method_not_allowed", "method not allowed")
CONFLICT = _spec(409, 409, "conflict", "conflicts with the current state")
PAYLOAD_TOO_LARGE = _spec(413, 413, "payload_too_large", "request body too large")
URI_TOO_LONG = _spec(414, 414, "uri_too_long", "request URL too long")
UNSUPPORTED_MEDIA = _spec(415, 415, "unsupported_media", "unsupported media type")
RATE_LIMITED = _spec(429, 429, "rate_limited", "too many requests, slow down")
HEADERS_TOO_LARGE = _spec(431, 431, "headers_too_large", "request headers too large")
INTERNAL_ERROR = _spec(500, 500, "internal_error", "internal server error")
UPSTREAM_TIMEOUT = _spec(524, 504, "upstream_timeout", "the server did not answer in time, retry")  # nginx
DATABASE_UNAVAILABLE = _spec(520, 503, "database_unavailable", "database unavailable")
REDIS_UNAVAILABLE = _spec(521, 503, "redis_unavailable", "redis unavailable")
SHUTTING_DOWN = _spec(522, 503, "shutting_down", "server is restarting, retry")
DATABASE_BUSY = _spec(525, 503, "database_busy", "database busy (lock conflict), retry")
OVERLOADED = _spec(526, 503, "overloaded", "server busy, retry after the Retry-After seconds")

# Domain errors of the later areas (profile, social, VIP, chat, nearby).
OBJECT_NOT_FOUND = _spec(511, 404, "object_not_found", "no such object")
BLOCKED = _spec(512, 403, "blocked", "blocked")
VIP_REQUIRED = _spec(513, 403, "vip_required", "this feature needs VIP")
NOT_AN_IMAGE = _spec(514, 415, "not_an_image", "the file is not a supported image")
PAYMENT_SIGN_INVALID = _spec(515, 401, "payment_sign_invalid", "payment callback signature invalid")
LOCATION_REJECTED = _spec(516, 400, "location_rejected", "location change rejected")
PAYMENT_MISMATCH = _spec(530, 400, "payment_mismatch", "payment does not match the order")
# The event stream and the features feeding it (docs/api.md, "Events").
LIKE_LIMIT_REACHED = _spec(531, 429, "like_limit_reached", "no likes left today")
SUPER_LIKE_LIMIT_REACHED = _spec(532, 429, "super_like_limit_reached", "no super-likes left today")
EVENTS_RESYNC = _spec(533, 410, "events_resync", "cursor too old: rebuild state, then poll without a cursor")
RECALL_WINDOW_PASSED = _spec(534, 409, "recall_window_passed", "too late to recall this message")


def all_error_specs() -> list[ErrorSpec]:
    """The whole table, ordered by code (for docs and OpenAPI)."""
    return sorted(_TABLE.values(), key=lambda s: s.code)


def spec_for_code(code: int) -> ErrorSpec:
    return _TABLE[code]


class ApiError(Exception):
    """The single exception type for every failure answered to a client."""

    def __init__(
        self,
        spec: ErrorSpec,
        msg: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg or spec.message)
        self.spec = spec
        self.msg = msg or spec.message
        self.headers = headers or {}

    @property
    def http_status(self) -> int:
        return self.spec.http_status

    def body(self) -> dict[str, Any]:
        return error_body(self.spec, self.msg)


def success_body(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"code": 0, "msg": "success", "data": {...}}``; ``data`` is always an object."""
    if data is not None and not isinstance(data, dict):
        raise TypeError("envelope data must be a dict, never a bare list")
    return {"code": 0, "msg": "success", "data": data if data is not None else {}}


def error_body(spec: ErrorSpec, msg: str | None = None) -> dict[str, Any]:
    """``{"code": <int>, "msg": "<reason>"}``."""
    return {"code": spec.code, "msg": msg or spec.message}


def dumps_envelope(body: dict[str, Any]) -> str:
    """Serialise an envelope the way Flask's ``jsonify`` does (compact, sorted, UTF-8),
    so native handlers and Flask answer byte-compatible JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
