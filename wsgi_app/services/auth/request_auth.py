"""The request check, sync executor: the Flask ``@endpoint`` decorator calls it.

All deciding happens in :mod:`wsgi_app.services.auth.core` (sans-I/O, where the
nonce/retry-id rule is documented); this module only performs its I/O with the
sync clients: the credentials cache (the database on a miss), ONE pipelined
Redis round trip (nonce ``SET NX`` + token cache ``GET``), and the database
only when the token is not cached. The native side runs the same core with
``redis.asyncio`` (:mod:`async_handlers.auth`). Needs an app context, no
request context: everything comes in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from flask import current_app

from wsgi_app.errors import APPKEY_UNKNOWN, ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services.auth import applications, tokens
from wsgi_app.services.auth import core as auth_core
from wsgi_app.services.auth.core import AuthPlan, Caller, UserCaller, bearer_token

__all__ = ["Caller", "UserCaller", "ask_redis", "authenticate_request", "bearer_token"]


def ask_redis(client: redis.Redis, plan: AuthPlan) -> list[Any]:
    """The answers to the plan's commands, in one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for command in auth_core.redis_commands(plan):
        pipe.execute_command(*command)
    return pipe.execute()


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

    ``retry_id``: the ``X-Request-Id`` nginx set (see :mod:`wsgi_app.services.auth.core`)."""
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
        retry_id=retry_id,
    )
    caller = auth_core.judge(plan, ask_redis(redis_client(), plan))
    if caller is None:
        assert plan.token_hash is not None
        caller = auth_core.judge_user(plan, tokens.lookup_in_database(plan.token_hash))
    return caller
