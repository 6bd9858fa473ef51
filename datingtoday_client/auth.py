"""Auth classes that sign every request: one for ``requests``, one for ``httpx``.

    from datingtoday_client.auth import DatingTodayAuth, DatingTodayHttpxAuth
    requests.get(url, params={...}, auth=DatingTodayAuth(appkey, secret))
    httpx.Client(base_url=url, auth=DatingTodayHttpxAuth(appkey, secret, user_id=1, token=t))

Both delegate to :func:`datingtoday_client.wire.sign_wire_request`, so they
sign exactly alike; a client generated from the OpenAPI document (httpx-based)
plugs the httpx class in unchanged. Either HTTP library may be missing: only
the class built on it is then unusable.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from datingtoday_client.signing import SIGN_METHOD_HMAC_SHA256
from datingtoday_client.wire import Credentials, sign_wire_request

if TYPE_CHECKING:
    import httpx
    import requests


def _as_bytes(body: Any) -> bytes | None:
    if body is None:
        return None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


if TYPE_CHECKING:
    from httpx import Auth as _HttpxBase
    from requests.auth import AuthBase as _RequestsBase
else:
    try:  # requests is optional
        import requests.auth as _requests_auth

        _RequestsBase = _requests_auth.AuthBase
    except ImportError:  # pragma: no cover
        _RequestsBase = object

    try:  # httpx is optional
        import httpx as _httpx

        _HttpxBase = _httpx.Auth
    except ImportError:  # pragma: no cover
        _HttpxBase = object


class DatingTodayAuth(_RequestsBase):
    """``requests`` auth: ``requests.post(url, data={...}, auth=DatingTodayAuth(key, secret))``."""

    def __init__(
        self,
        appkey: str,
        secret: str,
        sign_method: str = SIGN_METHOD_HMAC_SHA256,
        *,
        user_id: int | str | None = None,
        token: str | None = None,
    ) -> None:
        self.creds = Credentials(appkey, secret, sign_method, user_id, token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = _as_bytes(request.body)
        url, new_body = sign_wire_request(
            self.creds, request.method or "GET", request.url or "", request.headers.get("Content-Type"), body
        )
        request.url = url
        if new_body is not body:
            request.body = new_body
            request.headers["Content-Length"] = str(len(new_body or b""))
        return request


class DatingTodayHttpxAuth(_HttpxBase):
    """``httpx`` auth: ``httpx.Client(auth=DatingTodayHttpxAuth(key, secret, user_id=1, token=t))``."""

    requires_request_body = True

    def __init__(
        self,
        appkey: str,
        secret: str,
        sign_method: str = SIGN_METHOD_HMAC_SHA256,
        *,
        user_id: int | str | None = None,
        token: str | None = None,
    ) -> None:
        self.creds = Credentials(appkey, secret, sign_method, user_id, token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        import httpx

        body = request.content
        url, new_body = sign_wire_request(
            self.creds, request.method, str(request.url), request.headers.get("Content-Type"), body
        )
        if new_body is body:
            request.url = httpx.URL(url)
            yield request
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        yield httpx.Request(
            request.method, url, headers=headers, content=new_body, extensions=request.extensions
        )
