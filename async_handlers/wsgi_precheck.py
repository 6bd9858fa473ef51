"""The request check of a Flask request, its Redis round trip done on the event loop.

Every signed Flask view makes one Redis round trip before it can answer (nonce
``SET NX``, token ``GET``, and the keys the view prefetches, such as the
caller's cached profile). Made by the view with the sync client on a worker
thread, that one round trip was two thirds of a cached profile read's time
(``bench/crud_profile.md``). Here the WSGI container makes it on the loop
before the call, in the pipeline the native handlers share
(:mod:`async_handlers.redis_batch`), and hands the plan and the answers to the
view in the WSGI environ (:class:`~wsgi_app.services.auth.request_auth.PrecheckedRequest`);
the view judges them with the same code as when it asks Redis itself.

Invariants:

- nothing is decided here: what the check raises (an ``ApiError``, a Redis
  failure) is handed to the view, which raises it where it would have raised it
  itself, so the answer (envelope, status, headers, log line, metrics) is the
  view's own;
- only requests whose parameters the loop reads exactly as Flask will: a static
  route of the Flask app whose view is a signed ``@endpoint``, its method (not
  HEAD or OPTIONS), a query string and an optional ``x-www-form-urlencoded``
  body of at most ``MAX_BODY_BYTES`` that decode as UTF-8, read by the same
  function as Flask's (:func:`wsgi_app.params.params_from_raw`); the view uses
  the check only if its own parameters are equal;
- an appkey not in the per-process cache is left to the view (it reads the
  database on its thread; the loop never does);
- the path and method signed are the environ's, which are Flask's;
- a request is said to need no I/O (the container then runs it on the loop,
  not on a worker thread) only when the check failed (the view raises at
  once), or when the token was in the cache and the view declares
  (``answered_from_prefetch``) that it answers these parameters from these
  prefetched values alone: a cached own-profile read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

from async_handlers.auth import ask_redis_async, plan_on_loop
from wsgi_app.params import params_from_raw
from wsgi_app.services.auth import core as auth_core
from wsgi_app.services.auth.request_auth import PRECHECK_ENVIRON_KEY, PrecheckedRequest

if TYPE_CHECKING:
    from async_handlers.base import NativeContext

MAX_BODY_BYTES = 64 * 1024
FORM_MIMETYPE = "application/x-www-form-urlencoded"
Prefetch = Callable[[Mapping[str, str]], Sequence[str]]
AnsweredFromPrefetch = Callable[[Mapping[str, str], Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class SignedRoute:
    """What the check of one (method, path) of the Flask app needs to know."""

    need_user: bool
    prefetch: Prefetch | None
    answered_from_prefetch: AnsweredFromPrefetch | None = None


def signed_routes(flask_app: Flask) -> dict[tuple[str, str], SignedRoute]:
    """(method, path) -> route, for the static routes whose view is a signed ``@endpoint``."""
    routes: dict[tuple[str, str], SignedRoute] = {}
    for rule in flask_app.url_map.iter_rules():
        view = flask_app.view_functions.get(rule.endpoint)
        spec = getattr(view, "endpoint_spec", None)
        if rule.arguments or spec is None or spec.auth == "none":
            continue
        route = SignedRoute(
            spec.auth == "user",
            getattr(view, "endpoint_prefetch", None),
            getattr(view, "endpoint_answered_from_prefetch", None),
        )
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes[(method, rule.rule)] = route
    return routes


def _params(environ: Mapping[str, Any], body: bytes) -> dict[str, str] | None:
    """The parameters as Flask will read them, or None when the loop should not guess."""
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type:
        if content_type.partition(";")[0].strip().lower() != FORM_MIMETYPE:
            return None
        if len(body) > MAX_BODY_BYTES or environ.get("CONTENT_LENGTH") != str(len(body)):
            return None
    try:
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        return params_from_raw(query, body if content_type else b"")
    except UnicodeError:  # Flask answers that itself
        return None


class WsgiPrecheck:
    """Called by the WSGI container with each request's environ before the WSGI call."""

    def __init__(self, context: NativeContext, routes: dict[tuple[str, str], SignedRoute]) -> None:
        self.context = context
        self.routes = routes

    @classmethod
    def for_app(cls, context: NativeContext) -> WsgiPrecheck:
        return cls(context, signed_routes(context.flask_app))

    async def __call__(self, environ: dict[str, Any], body: bytes) -> bool:
        """Check the request if it can; True when its view will then make no I/O call
        (an answer from the prefetched values, or an error), so it may run on the loop."""
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        route = self.routes.get((method, path))
        if route is None:
            return False
        params = _params(environ, body)
        if params is None:
            return False
        try:
            plan = await plan_on_loop(
                self.context,
                method,
                path,
                params,
                environ.get("HTTP_AUTHORIZATION"),
                need_user=route.need_user,
                retry_id=environ.get("HTTP_X_REQUEST_ID"),
                look_up_credentials=False,
            )
            if plan is None:
                return False
            prefetch = tuple(route.prefetch(params)) if route.need_user and route.prefetch else ()
            auth_commands = auth_core.redis_commands(plan)
            commands = [*auth_commands, *(("GET", key) for key in prefetch)]
            answers = await ask_redis_async(self.context, commands)
        except Exception as err:  # the view raises it (see the module docstring)
            environ[PRECHECK_ENVIRON_KEY] = PrecheckedRequest(params, error=err)
            return True
        environ[PRECHECK_ENVIRON_KEY] = PrecheckedRequest(params, prefetch, plan, answers)
        answered = route.answered_from_prefetch
        return (
            answered is not None
            and auth_core.token_cached(plan, answers[: len(auth_commands)])
            and answered(params, dict(zip(prefetch, answers[len(auth_commands) :], strict=True)))
        )
