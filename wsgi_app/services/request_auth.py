"""The request check, sync executor: the Flask ``@endpoint`` decorator calls it.

All deciding happens in :mod:`wsgi_app.services.auth_core` (sans-I/O); this
module only performs its I/O with the sync clients: the credentials cache (the
database on a miss), ONE pipelined Redis round trip (nonce ``SET NX`` + token
cache ``GET``), and the database only when the token is not cached. The native
side runs the same core with ``redis.asyncio`` (:mod:`async_handlers.auth`).
Needs an app context, no request context: everything comes in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis
from flask import current_app

from wsgi_app.errors import APPKEY_UNKNOWN, ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services import applications, auth_core, tokens
from wsgi_app.services.auth_core import AuthPlan, Caller, bearer_token

__all__ = ["Caller", "authenticate_request", "bearer_token", "ask_redis"]


def ask_redis(client: redis.Redis, plan: AuthPlan) -> tuple[bool, str | None]:
    """``(nonce fresh, cached token entry)`` in one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.set(plan.nonce_key, "1", nx=True, ex=plan.nonce_ttl_secs)
    token_key = plan.token_cache_key
    if token_key is not None:
        pipe.get(token_key)
    answers = pipe.execute()
    return bool(answers[0]), answers[1] if token_key is not None else None


def authenticate_request(
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
) -> Caller:
    """Verify the signature and, if ``need_user``, the token; returns the caller."""
    creds = applications.find_credentials(auth_core.required_appkey(params))
    if creds is None:
        raise ApiError(APPKEY_UNKNOWN)
    plan = auth_core.plan_request(
        creds,
        http_method,
        path,
        params,
        authorization,
        need_user=need_user,
        window_secs=current_app.config["SIGN_WINDOW_SECS"],
    )
    nonce_fresh, cached_token = ask_redis(redis_client(), plan)
    caller = auth_core.judge(plan, nonce_fresh, cached_token)
    if caller is None:
        assert plan.token_hash is not None
        caller = auth_core.judge_user(plan, tokens.lookup_in_database(plan.token_hash))
    return caller
