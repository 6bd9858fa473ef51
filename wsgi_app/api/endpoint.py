"""The decorator every API view uses: sign check, token check, parameters, envelope.

    @bp.route("/show", methods=["GET"])
    @endpoint(summary="Show a profile", params=[Param("peerId", "integer", minimum=1)])
    def show(caller: UserCaller, peer_id: int | None = None) -> dict: ...

The view receives the caller and its declared parameters as keyword arguments
(snake_case): a :class:`UserCaller` (its ``user_id`` is never None) when
``auth="user"`` (the default), a :class:`Caller` when ``auth="app"``, ``None``
when ``auth="none"``, and returns the ``data`` object of the envelope. A view declared
with ``prefetch`` (a function of the raw parameters giving Redis keys) also
receives ``prefetched``: those keys' values, read in the request check's one
Redis round trip (``{}`` when the endpoint needs no signed-in user).
``answered_from_prefetch(params, prefetched)`` says when the view then makes no
database or Redis call at all (a cache hit). The declaration is kept on the
view (``endpoint_spec``, ``endpoint_prefetch``, ``endpoint_answered_from_prefetch``)
for the OpenAPI document and for the server, which may do the request check's
Redis round trip before the call (:class:`PrecheckedRequest` in the WSGI environ)
and run a view that will make no I/O call on its event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Response, g, jsonify, request

from wsgi_app.declarations import AuthLevel, EndpointSpec
from wsgi_app.errors import ErrorSpec, success_body
from wsgi_app.params import Param, merge_request_params, parse_params
from wsgi_app.services.auth.request_auth import (
    PRECHECK_ENVIRON_KEY,
    Caller,
    PrecheckedRequest,
    UserCaller,
    authenticate_and_prefetch,
    judge_prechecked,
)


def request_params() -> dict[str, str]:
    """Query and form merged as the contract says (uploaded files are not params)."""
    return merge_request_params(request.args.items(multi=True), request.form.items(multi=True))


def endpoint(
    *,
    summary: str,
    params: Sequence[Param] = (),
    auth: AuthLevel = "user",
    data_schema: dict[str, Any] | None = None,
    errors: Sequence[ErrorSpec] = (),
    description: str = "",
    prefetch: Callable[[Mapping[str, str]], Sequence[str]] | None = None,
    answered_from_prefetch: Callable[[Mapping[str, str], Mapping[str, Any]], bool] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    spec = EndpointSpec(summary, tuple(params), auth, data_schema, tuple(errors), description)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**route_kwargs: Any) -> Any:
            raw = request_params()
            caller: Caller | UserCaller | None = None
            prefetched: dict[str, Any] = {}
            if spec.auth != "none":
                checked: PrecheckedRequest | None = request.environ.get(PRECHECK_ENVIRON_KEY)
                if checked is not None:
                    if checked.params != raw:  # the server reads them as Flask does: cannot happen
                        raise RuntimeError("the server's request check read other parameters")
                    caller, prefetched = judge_prechecked(checked)
                else:
                    headers = request.headers
                    caller, prefetched = authenticate_and_prefetch(
                        request.method,
                        request.path,
                        raw,
                        headers.get("Authorization"),
                        need_user=spec.auth == "user",
                        retry_id=headers.get("X-Request-Id"),
                        prefetch=prefetch(raw) if prefetch is not None and spec.auth == "user" else (),
                    )
                g.caller = caller
                if spec.auth == "user":
                    caller = caller.signed_in()
            values = parse_params(spec.params, raw)
            if prefetch is not None:
                values["prefetched"] = prefetched
            result = view(caller, **route_kwargs, **values)
            if isinstance(result, Response):
                return result
            return jsonify(success_body(result))

        wrapper.endpoint_spec = spec  # type: ignore[attr-defined]
        wrapper.endpoint_prefetch = prefetch  # type: ignore[attr-defined]
        wrapper.endpoint_answered_from_prefetch = answered_from_prefetch  # type: ignore[attr-defined]
        return wrapper

    return decorator
