"""The standalone client (``datingtoday_client``): no server imports, CLI, requests and httpx auth.

Every request goes to a real Tornado server on a free port; the auth classes
sign GETs (query), url-encoded POSTs (body) and multipart uploads (text
fields covered, signing fields in the query) with both sign methods.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import requests
from flask import Flask

from datingtoday_client.auth import DatingTodayAuth, DatingTodayHttpxAuth
from datingtoday_client.wire import Credentials, multipart_text_fields, sign_wire_request
from tests.chat_support import png_bytes
from tests.conftest import REPO_ROOT, LiveServer, free_port, make_application

SERVER_MODULES = ("flask", "sqlalchemy", "wsgi_app", "redis", "tornado", "requests", "httpx")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "datingtoday_client", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, runpy; sys.argv=['x','--help']\n"
        "try: runpy.run_module('datingtoday_client', run_name='__main__')\n"
        "except SystemExit: pass\n"
        f"print(sorted(m for m in {SERVER_MODULES!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_unsigned_path_needs_no_credentials(live_server: LiveServer) -> None:
    result = _cli("GET", "/api/health", env={"DT_BASE_URL": live_server.base_url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == {"database": "ok", "redis": "ok"}


def test_signed_path_without_credentials_says_what_to_set() -> None:
    result = _cli("GET", "/api/user/show")
    assert result.returncode == 2 and "DT_APPKEY" in result.stderr


def test_connection_error_is_one_line() -> None:
    result = _cli("GET", "/api/health", env={"DT_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach"), result.stderr


def test_old_module_path_still_works(live_server: LiveServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsgi_app.client", "GET", "/api/time"],
        cwd=REPO_ROOT,
        env={**os.environ, "DT_BASE_URL": live_server.base_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "timestamp" in json.loads(result.stdout)["data"]


def test_multipart_text_fields_skip_files() -> None:
    from datingtoday_client.cli import encode_multipart

    photo = Path(__file__)
    body, ctype = encode_multipart({"userId": "7", "note": "a=b&c"}, {"photo": photo})
    assert multipart_text_fields(body, ctype) == [("userId", "7"), ("note", "a=b&c")]


def test_wire_signing_leaves_unsigned_paths_alone() -> None:
    creds = Credentials("k", "s")
    assert sign_wire_request(creds, "GET", "http://h/api/health", None, None) == ("http://h/api/health", None)


def _sign_in_with(session_call, phone: str) -> dict[str, str]:
    sent = session_call("POST", "/api/auth/sendsms", data={"phone": phone})
    assert sent.status_code == 200, sent.text
    code = sent.json()["data"]["code"]
    login = session_call("POST", "/api/auth/login", data={"phone": phone, "code": code})
    assert login.status_code == 200, login.text
    return login.json()["data"]


@pytest.mark.parametrize("method", ["md5-legacy", "hmac-sha256"])
def test_requests_auth_signs_get_form_and_multipart(app: Flask, live_server: LiveServer, method: str) -> None:
    app.config["SMS_ECHO_CODE"] = True
    creds = make_application(app, method)
    auth = DatingTodayAuth(creds.appkey, creds.secret, method)
    base = live_server.base_url

    def call(verb: str, path: str, **kw):
        return requests.request(verb, base + path, auth=auth, timeout=30, **kw)

    login = _sign_in_with(call, "13800000071")
    user_auth = DatingTodayAuth(
        creds.appkey, creds.secret, method, user_id=login["user_id"], token=login["token"]
    )
    shown = requests.get(base + "/api/user/show", auth=user_auth, timeout=30)
    assert shown.status_code == 200, shown.text
    assert shown.json()["data"]["phone"] == "13800000071"
    uploaded = requests.post(
        base + "/api/photo/upload",
        files={"photo": ("a.png", png_bytes(), "image/png")},
        auth=user_auth,
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    # Unsigned paths pass untouched; a wrong secret is refused with the signature code.
    assert requests.get(base + "/api/time", auth=auth, timeout=30).status_code == 200
    bad = requests.get(
        base + "/api/user/show", auth=DatingTodayAuth(creds.appkey, "x" * 48, method), timeout=30
    )
    assert bad.status_code == 401 and bad.json()["code"] == 506


@pytest.mark.parametrize("method", ["md5-legacy", "hmac-sha256"])
def test_httpx_auth_signs_get_form_and_multipart(app: Flask, live_server: LiveServer, method: str) -> None:
    app.config["SMS_ECHO_CODE"] = True
    creds = make_application(app, method)
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        auth = DatingTodayHttpxAuth(creds.appkey, creds.secret, method)

        def call(verb: str, path: str, **kw):
            return client.request(verb, path, auth=auth, **kw)

        login = _sign_in_with(call, "13800000072")
        user_auth = DatingTodayHttpxAuth(
            creds.appkey, creds.secret, method, user_id=login["user_id"], token=login["token"]
        )
        shown = client.get("/api/user/show", params={"peerId": login["user_id"]}, auth=user_auth)
        assert shown.status_code == 200, shown.text
        uploaded = client.post(
            "/api/photo/upload", files={"photo": ("a.png", png_bytes(), "image/png")}, auth=user_auth
        )
        assert uploaded.status_code == 200, uploaded.text
        nearby = client.get("/api/user/nearby/list", auth=user_auth)
        assert nearby.status_code in (200, 400), nearby.text
        assert nearby.json()["code"] not in (506, 507, 508, 509, 504)
