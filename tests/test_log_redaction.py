"""No credential in any log, and access lines that name the error: both sides, real servers.

A real ``tornado_server.py`` process (JSON log format, the ``log`` SMS gateway)
is sent requests carrying live tokens, SMS codes, signatures and nonces, some
refused for each signing reason; its whole captured output is then grepped for
those values. An in-process server whose native handler crashes shows that
Tornado's own ``tornado.application`` line (which prints the full URL) is
redacted too.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask

from async_handlers.base import ServerTimeHandler
from datingtoday_client.signing import sign_params
from tests.conftest import LiveServer, make_application
from wsgi_app.logging_setup import JsonFormatter, RedactingFormatter, redact
from wsgi_app.services.auth.applications import AppCredentials


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/chat/poll?userId=1&token=SECRETVALUE&sign=SECRETVALUE&nonce=SECRETVALUE",
        "uri='/api/x?a=1&Token=SECRETVALUE', body=b'code=SECRETVALUE&phone=1'",
        '{"token": "SECRETVALUE", "appsecret": "SECRETVALUE"}',
        "{'sign': 'SECRETVALUE'}",
        "Authorization: Bearer SECRETVALUE",
        "sms login code for 138****0000: SECRETVALUE",
    ],
)
def test_redact_blanks_every_form(line: str) -> None:
    cleaned = redact(line)
    assert "SECRETVALUE" not in cleaned and "[redacted]" in cleaned


def test_redact_keeps_what_is_not_a_credential() -> None:
    line = 'GET /api/user/show 401 2.0ms err=506:sign_invalid uid=- userId=7 {"code": 506}'
    assert redact(line) == line


def _call(
    base_url: str, method: str, path: str, params: dict[str, str], rid: str
) -> tuple[int, dict[str, Any]]:
    url = f"{base_url}{path}"
    data = None
    if method == "GET":
        url += "?" + urlencode(params)
    else:
        data = urlencode(params).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"X-Request-Id": rid})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _signed(
    creds: AppCredentials, method: str, path: str, params: dict[str, str], **kw: str
) -> dict[str, str]:
    return sign_params(
        params,
        appkey=kw.pop("appkey", creds.appkey),
        secret=kw.pop("secret", creds.secret),
        sign_method=creds.sign_method,
        http_method=method,
        path=path,
        **kw,
    )


def test_process_logs_hold_no_credentials_and_name_each_error(app: Flask, spawn_server) -> None:
    creds = make_application(app)
    server = spawn_server(LOG_FORMAT="json", SMS_GATEWAY="log", SMS_ECHO_CODE="1")
    base = server.base_url
    secrets_seen: list[str] = []

    def call(method: str, path: str, params: dict[str, str], rid: str, **kw: str) -> dict[str, Any]:
        signed = _signed(creds, method, path, params, **kw)
        secrets_seen.extend([signed["sign"], signed["nonce"]])
        return _call(base, method, path, signed, rid)[1]

    code = call("POST", "/api/auth/sendsms", {"phone": "13800000081"}, "r-sms")["data"]["code"]
    login = call("POST", "/api/auth/login", {"phone": "13800000081", "code": code}, "r-login")["data"]
    token, uid = login["token"], str(login["user_id"])
    secrets_seen.extend([code, token])
    user = {"userId": uid, "token": token}
    expected = {
        "r-ok-flask": (200, None),
        "r-ok-native": (200, None),
        "r-sign-flask": (401, 506),
        "r-sign-native": (401, 506),
        "r-appkey-flask": (401, 507),
        "r-stale-native": (401, 508),
        "r-token-flask": (401, 504),
        "r-token-native": (401, 504),
    }
    call("GET", "/api/user/show", user, "r-ok-flask")
    call("GET", "/api/chat/poll", user, "r-ok-native")  # no cursor: answers at once
    call("GET", "/api/user/show", user, "r-sign-flask", secret="wrong" * 8)
    call("GET", "/api/chat/poll", user, "r-sign-native", secret="wrong" * 8)
    call("POST", "/api/user/update", user, "r-appkey-flask", appkey="unknown" + secrets.token_hex(4))
    call("GET", "/api/user/nearby/list", user, "r-stale-native", timestamp=str(int(time.time()) - 100000))
    call("GET", "/api/user/show", {"userId": uid, "token": "wrong" + token}, "r-token-flask")
    call("GET", "/api/chat/poll", {"userId": uid, "token": "wrong" + token}, "r-token-native")
    server.stop()
    output = server.output()

    leaked = [value for value in secrets_seen if value in output]
    assert not leaked, f"credentials in the log: {leaked}\n{output[-3000:]}"
    access: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        entry = json.loads(line)  # the JSON format: every line is one object
        if entry["logger"] == "datingtoday.access":
            access[entry["request_id"]] = entry
    for rid, (status, error_code) in expected.items():
        assert (access[rid]["status"], access[rid]["error_code"]) == (status, error_code), access[rid]
        assert access[rid]["duration_ms"] >= 0
    assert access["r-ok-flask"]["user_id"] == int(uid) == access["r-ok-native"]["user_id"]


def test_tornado_uncaught_exception_line_is_redacted(
    app: Flask, live_server: LiveServer, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash(self: ServerTimeHandler) -> None:
        raise RuntimeError("boom while handling token=SECRETTOKEN")

    monkeypatch.setattr(ServerTimeHandler, "get", crash)
    query = "token=SECRETTOKEN&sign=SECRETSIGN&nonce=SECRETNONCE&code=SECRETCODE"
    with caplog.at_level(logging.INFO):
        status, body = _call(live_server.base_url, "GET", "/api/time", {}, "r-crash")
        request = urllib.request.Request(f"{live_server.base_url}/api/time?{query}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
    assert status == 500 and body["code"] == 500 and refused.value.code == 500
    tornado_lines = [r for r in caplog.records if r.name == "tornado.application"]
    assert tornado_lines, "Tornado logged no uncaught exception: the test provokes nothing"
    for formatter in (RedactingFormatter(), JsonFormatter()):
        text = "\n".join(formatter.format(r) for r in caplog.records)
        for secret in ("SECRETTOKEN", "SECRETSIGN", "SECRETNONCE", "SECRETCODE"):
            assert secret not in text, text
    assert "SECRET" not in caplog.text
