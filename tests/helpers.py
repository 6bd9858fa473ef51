"""Test helpers: a signing API client over Flask's test client or real HTTP."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient

from datingtoday_client.cli import encode_multipart
from datingtoday_client.signing import sign_params
from wsgi_app.services.auth.applications import AppCredentials


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return self.body.get("code", -1)

    @property
    def data(self) -> dict[str, Any]:
        return self.body.get("data", {})


@dataclass(frozen=True)
class SignedInUser:
    user_id: int
    token: str
    phone: str

    def params(self) -> dict[str, str]:
        return {"userId": str(self.user_id), "token": self.token}


class FlaskTransport:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        form: dict[str, Any] | None,
        headers: dict[str, str],
        raw_body: bytes | None = None,
        content_type: str | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": headers, "query_string": query or None}
        if raw_body is not None:
            kwargs["data"] = raw_body
            kwargs["content_type"] = content_type
        elif form is not None:
            kwargs["data"] = form
        response = self.client.open(path, method=method, **kwargs)
        text = response.get_data(as_text=True)
        return Reply(response.status_code, json.loads(text), dict(response.headers))


class HttpTransport:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        form: dict[str, Any] | None,
        headers: dict[str, str],
        raw_body: bytes | None = None,
        content_type: str | None = None,
    ) -> Reply:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = raw_body
        headers = dict(headers)
        if raw_body is not None and content_type:
            headers["Content-Type"] = content_type
        elif form is not None:
            files = {k: v for k, v in form.items() if not isinstance(v, str)}
            if files:
                raise NotImplementedError("use raw_body for uploads over HTTP")
            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                status, payload, hdrs = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as err:
            status, payload, hdrs = err.code, err.read(), dict(err.headers)
        return Reply(status, json.loads(payload), hdrs)


class ApiClient:
    """Signs every call with one application's credentials."""

    def __init__(self, transport: FlaskTransport | HttpTransport, creds: AppCredentials) -> None:
        self.transport = transport
        self.creds = creds

    @property
    def flask_client(self) -> FlaskClient:
        """The Flask test client behind an in-process client (for unsigned or raw requests)."""
        assert isinstance(self.transport, FlaskTransport), "only an in-process ApiClient has one"
        return self.transport.client

    def signed(self, method: str, path: str, params: dict[str, Any], **overrides: str) -> dict[str, str]:
        plain = {k: str(v) for k, v in params.items()}
        return sign_params(
            plain,
            appkey=self.creds.appkey,
            secret=self.creds.secret,
            sign_method=self.creds.sign_method,
            http_method=method,
            path=path,
            **overrides,
        )

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        user: SignedInUser | None = None,
        files: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        in_query: bool | None = None,
        **sign_overrides: str,
    ) -> Reply:
        params = dict(params or {})
        if user is not None:
            params = {**user.params(), **params}
        signed = self.signed(method, path, params, **sign_overrides)
        if in_query is None:
            in_query = method == "GET" and not files
        if in_query:
            return self.transport.send(method, path, signed, None, headers or {})
        if files and isinstance(self.transport, HttpTransport):
            body, ctype = encode_multipart(signed, files)
            return self.transport.send(method, path, None, None, headers or {}, body, ctype)
        form: dict[str, Any] = dict(signed)
        form.update(files or {})
        return self.transport.send(method, path, None, form, headers or {})

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return self.call("GET", path, params, **kw)

    def post(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return self.call("POST", path, params, **kw)

    def sign_in(self, phone: str, code_reader: Any) -> SignedInUser:
        sent = self.post("/api/auth/sendsms", {"phone": phone})
        assert sent.status == 200, sent.body
        code = sent.data.get("code") or code_reader(phone)
        reply = self.post("/api/auth/login", {"phone": phone, "code": code})
        assert reply.status == 200, reply.body
        return SignedInUser(reply.data["user_id"], reply.data["token"], phone)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (tests wait for conditions, not time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def assert_native_answer(
    response: http.client.HTTPResponse, body: bytes, status: int, code: int, request_id: str, origin: str
) -> None:
    """A native answer on the wire: its status and envelope code, JSON, the request id, CORS for
    ``origin``, the security headers, no ``Server`` banner."""
    assert (response.status, response.getheader("Content-Type")) == (
        status,
        "application/json; charset=utf-8",
    ), body
    assert f'"code":{code}'.encode() in body.replace(b" ", b""), body
    assert response.getheader("X-Request-Id") == request_id
    assert response.getheader("Access-Control-Allow-Origin") == origin
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("Server") is None
