"""The one request check: application signature, then (when needed) the user's token.

Called by the Flask endpoint decorator and, through the worker thread pool,
by the native Tornado handlers. It needs an app context (database) but no
request context: everything comes in as arguments.

A nonce is spent once, except by the same proxied request: nginx sets a fresh
``X-Request-Id`` on every client request and resends it unchanged when it
retries the request on another process (a process that stopped or died after
spending the nonce). The nonce key stores that id, and a request carrying the
same id passes again: a retry, not a replay (a replay through nginx gets a new
id). See docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app

from wsgi_app.errors import APPKEY_UNKNOWN, NONCE_REPLAYED, PARAM_INVALID, ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services import applications, signing, tokens


@dataclass(frozen=True)
class Caller:
    """Who is calling: the application, and the signed-in user when there is one."""

    app_id: int
    appkey: str
    user_id: int | None = None
    token_hash: str | None = None


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


MAX_RETRY_ID_LENGTH = 64


def _remember_nonce(appkey: str, nonce: str, window_secs: int, retry_id: str | None = None) -> None:
    if len(nonce) > signing.MAX_NONCE_LENGTH:
        raise ApiError(PARAM_INVALID, f"nonce: at most {signing.MAX_NONCE_LENGTH} characters")
    retry_id = retry_id if retry_id and len(retry_id) <= MAX_RETRY_ID_LENGTH else None
    key = f"nonce:{appkey}:{nonce}"
    client = redis_client()
    # Kept for twice the window: a timestamp may be up to one window in the future.
    fresh = client.set(key, retry_id or "1", nx=True, ex=2 * window_secs)
    if not fresh and not (retry_id and client.get(key) == retry_id):
        raise ApiError(NONCE_REPLAYED)


def verify_app_signature(
    http_method: str, path: str, params: Mapping[str, str], retry_id: str | None = None
) -> Caller:
    for name in ("appkey", "timestamp", "nonce", "sign"):
        if not params.get(name):
            raise ApiError(PARAM_INVALID, f"missing parameter: {name}")
    creds = applications.find_credentials(params["appkey"])
    if creds is None:
        raise ApiError(APPKEY_UNKNOWN)
    window_secs = current_app.config["SIGN_WINDOW_SECS"]
    signing.check_timestamp(params["timestamp"], window_secs)
    signing.verify_sign(creds.sign_method, http_method, path, params, creds.secret)
    # Only a correctly signed request may spend a nonce.
    _remember_nonce(creds.appkey, params["nonce"], window_secs, retry_id)
    return Caller(app_id=creds.id, appkey=creds.appkey)


def authenticate_request(
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
    retry_id: str | None = None,
) -> Caller:
    """Verify the signature and, if ``need_user``, the token; returns the caller.

    ``retry_id``: the ``X-Request-Id`` nginx set (see the module docstring)."""
    caller = verify_app_signature(http_method, path, params, retry_id)
    if not need_user:
        return caller
    token = params.get("token") or bearer_token(authorization)
    user_id, token_hash = tokens.authenticate(token, params.get("userId"))
    return Caller(caller.app_id, caller.appkey, user_id, token_hash)
