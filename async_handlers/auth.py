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
from typing import TYPE_CHECKING, Any, Protocol

from wsgi_app.errors import APPKEY_UNKNOWN, ApiError
from wsgi_app.services.auth import applications, tokens
from wsgi_app.services.auth import core as auth_core
from wsgi_app.services.auth.core import Caller

if TYPE_CHECKING:
    from async_handlers.base import NativeContext


class Batch(Protocol):
    """Where the round trip goes: the shared pipelines, or a handler's own connection."""

    async def run(self, commands: list[tuple[Any, ...]]) -> list[Any]: ...


async def authenticate_async(
    context: NativeContext,
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
    retry_id: str | None = None,
    batch: Batch | None = None,
) -> Caller:
    """Verify the signature and, if ``need_user``, the token; returns the caller.
    ``batch``: where the Redis round trip goes (default: the shared pipelines)."""
    appkey = auth_core.required_appkey(params)
    known, creds = applications.cached_credentials(appkey)
    if not known:
        creds = await context.run_blocking(applications.find_credentials, appkey)
    if creds is None:
        raise ApiError(APPKEY_UNKNOWN)
    plan = auth_core.plan_request(
        creds,
        http_method,
        path,
        params,
        authorization,
        need_user=need_user,
        window_secs=context.sign_window_secs,
        retry_id=retry_id,
    )
    # One round trip, in a pipeline shared with the other requests of this loop iteration.
    answers = await (batch or context.redis_batch).run(auth_core.redis_commands(plan))
    caller = auth_core.judge(plan, answers)
    if caller is None:
        assert plan.token_hash is not None
        user_id = await context.run_blocking(tokens.lookup_in_database, plan.token_hash)
        caller = auth_core.judge_user(plan, user_id)
    return caller
