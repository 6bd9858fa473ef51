"""The request check, sync executor: the Flask ``@endpoint`` decorator calls it.

All deciding happens in :mod:`wsgi_app.services.auth.core` (sans-I/O, where the
nonce/retry-id rule is documented); this module only performs its I/O with the
sync clients: the credentials cache (the database on a miss), ONE pipelined
Redis round trip (nonce ``SET NX`` + token cache ``GET``, plus the ``GET`` of
any keys the endpoint asks to prefetch, e.g. the caller's cached profile), and
the database only when the token is not cached. The native side runs the same core with
``redis.asyncio`` (:mod:`async_handlers.auth`). Needs an app context, no
request context: everything comes in as arguments.

Under ``tornado_server.py`` the server does the Redis round trip of most Flask
requests on its event loop before the WSGI call (:mod:`async_handlers.wsgi_precheck`)
and hands the plan and the answers over in the WSGI environ
(:data:`PRECHECK_ENVIRON_KEY`, a :class:`PrecheckedRequest`); the view then only
judges them (:func:`judge_prechecked`, the same judging as here). Under any other
WSGI server the key is absent and the view does the whole check itself. A client
cannot set the key: WSGI puts request headers under ``HTTP_...`` names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from flask import current_app

from wsgi_app.errors import APPKEY_UNKNOWN, ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services.auth import applications, tokens
from wsgi_app.services.auth import core as auth_core
from wsgi_app.services.auth.core import AuthPlan, Caller, UserCaller, bearer_token

__all__ = [
    "PRECHECK_ENVIRON_KEY",
    "Caller",
    "PrecheckedRequest",
    "UserCaller",
    "ask_redis",
    "authenticate_and_prefetch",
    "bearer_token",
    "judge_prechecked",
    "note_nonce_epoch",
]

PRECHECK_ENVIRON_KEY = "datingtoday.request_check"


@dataclass(frozen=True, slots=True)
class PrecheckedRequest:
    """The request check's I/O, done by the server before the WSGI call.

    ``params`` are the request's parameters as the server read them (the view
    uses the check only if its own are equal); then either ``error`` (what the
    check raised: an :class:`ApiError` or a Redis failure, raised again by the
    view where it would have raised it itself) or the ``plan`` and the
    ``answers`` to its commands followed by the values of ``prefetch``."""

    params: dict[str, str]
    prefetch: tuple[str, ...] = ()
    plan: AuthPlan | None = None
    answers: list[Any] | None = None
    error: Exception | None = None


def ask_redis(client: redis.Redis, plan: AuthPlan, prefetch: Sequence[str] = ()) -> list[Any]:
    """The answers to the plan's commands, then the values of ``prefetch``, in one pipelined round trip."""
    answers = _pipelined(client, [*auth_core.redis_commands(plan), *(("GET", key) for key in prefetch)])
    if auth_core.epoch_missing(answers):  # Redis lost its memory: the rare second round trip
        answers = auth_core.with_epoch(answers, _pipelined(client, auth_core.epoch_commands()))
    return answers


def note_nonce_epoch(client: redis.Redis) -> None:
    """At process start: a Redis without the nonce store's epoch marker gets it now, so the
    requests signed after this start are not refused as signed before a loss (best effort: a
    Redis that is down now is noticed by the first request after it is back)."""
    with contextlib.suppress(redis.RedisError):
        _pipelined(client, auth_core.epoch_commands())


def _pipelined(client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute()


def authenticate_and_prefetch(
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
    retry_id: str | None = None,
    prefetch: Sequence[str] = (),
) -> tuple[Caller, dict[str, Any]]:
    """Verify the signature and, if ``need_user``, the token; returns the caller and the values of
    the Redis keys ``prefetch``, read in the same round trip.

    ``retry_id``: the ``X-Request-Id`` nginx set (see :mod:`wsgi_app.services.auth.core`).

    The values are returned only once the request passed the check; the caller
    of this function must use only keys that belong to the authenticated caller."""
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
    return _judge_answers(plan, ask_redis(redis_client(), plan, prefetch), prefetch)


def judge_prechecked(checked: PrecheckedRequest) -> tuple[Caller, dict[str, Any]]:
    """:func:`authenticate_and_prefetch`'s result from the server's :class:`PrecheckedRequest`."""
    if checked.error is not None:
        raise checked.error
    assert checked.plan is not None and checked.answers is not None
    return _judge_answers(checked.plan, checked.answers, checked.prefetch)


def _judge_answers(
    plan: AuthPlan, answers: list[Any], prefetch: Sequence[str]
) -> tuple[Caller, dict[str, Any]]:
    """The caller (the database only when the token is not cached) and the prefetched values."""
    auth_answers = answers[: len(answers) - len(prefetch)]
    caller = auth_core.judge(plan, auth_answers)
    if caller is None:
        assert plan.token_hash is not None
        caller = auth_core.judge_user(plan, tokens.lookup_in_database(plan.token_hash))
    return caller, dict(zip(prefetch, answers[len(auth_answers) :], strict=True))
