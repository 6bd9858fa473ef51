"""The request check, async executor: native handlers authenticate on the event loop.

Same core as the Flask side (:mod:`wsgi_app.services.auth.core`), different
I/O: credentials from the per-process cache (the worker pool only on a miss),
ONE ``redis.asyncio`` round trip (nonce ``SET NX`` + token cache ``GET``, in a
pipeline shared with the other requests of the same loop iteration:
:mod:`async_handlers.redis_batch`) awaited on the loop, and the database (worker pool) only when the
token is not cached. A poll whose caller is cached never touches a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from async_handlers.presence import note_active
from wsgi_app.errors import APPKEY_UNKNOWN, ApiError
from wsgi_app.services.auth import applications, tokens
from wsgi_app.services.auth import core as auth_core
from wsgi_app.services.auth.core import AuthPlan, Caller

if TYPE_CHECKING:
    from async_handlers.base import NativeContext


async def authenticate_async(
    context: NativeContext,
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
    retry_id: str | None = None,
) -> Caller:
    """Verify the signature and, if ``need_user``, the token; returns the caller."""
    plan = await plan_on_loop(
        context, http_method, path, params, authorization, need_user=need_user, retry_id=retry_id
    )
    assert plan is not None  # looked up when not cached
    # One round trip, in a pipeline shared with the other requests of this loop iteration.
    caller = auth_core.judge(plan, await ask_redis_async(context, auth_core.redis_commands(plan)))
    if caller is None:
        assert plan.token_hash is not None
        user_id = await context.run_blocking(tokens.lookup_in_database, plan.token_hash)
        caller = auth_core.judge_user(plan, user_id)
    if caller.user_id is not None:
        note_active(context, caller.user_id)
    return caller


async def ask_redis_async(context: NativeContext, commands: list[auth_core.Command]) -> list[Any]:
    """The answers to a request check's commands (:func:`wsgi_app.services.auth.core.redis_commands`
    first, anything after them), with the epoch read again when Redis lost its memory."""
    answers: list[Any] = await context.redis_batch.run(commands)
    if auth_core.epoch_missing(answers):
        answers = auth_core.with_epoch(answers, await context.redis_batch.run(auth_core.epoch_commands()))
    return answers


async def plan_on_loop(
    context: NativeContext,
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
    retry_id: str | None = None,
    look_up_credentials: bool = True,
) -> AuthPlan | None:
    """The request's plan (:func:`wsgi_app.services.auth.core.plan_request`); raises its errors.

    Credentials come from the per-process cache; on a miss they are read on the
    worker pool, or, with ``look_up_credentials=False``, the answer is None."""
    appkey = auth_core.required_appkey(params)
    known, creds = applications.cached_credentials(appkey)
    if not known:
        if not look_up_credentials:
            return None
        creds = await context.run_blocking(applications.find_credentials, appkey)
    if creds is None:
        raise ApiError(APPKEY_UNKNOWN)
    return auth_core.plan_request(
        creds,
        http_method,
        path,
        params,
        authorization,
        need_user=need_user,
        window_secs=context.sign_window_secs,
        retry_id=retry_id,
    )
