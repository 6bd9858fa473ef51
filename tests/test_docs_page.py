"""``/api/docs``: the Swagger UI page renders in a real headless Chromium, lists every operation,
and signs what a person tries out there (``tests/cdp.py`` drives the browser).

The browser loads the page and its assets from the live server only (assets
come from a Python package, never a CDN); the rendered DOM must show one
operation block per documented operation. Chromium is Debian's package
(``.ci/run`` installs it); without it the test fails under CI and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from datingtoday_client.signing import (
    SIGN_METHOD_HMAC_SHA256,
    SIGN_METHOD_MD5_LEGACY,
    SIGN_METHODS,
    compute_sign,
)
from tests.cdp import CHROMIUM_FLAGS as BROWSER_FLAGS
from tests.cdp import Browser
from tests.conftest import LiveServer, make_application, once_per_ci_run

CHROMIUM_FLAGS = [*BROWSER_FLAGS, "--virtual-time-budget=20000"]
_OPERATION_RE = re.compile(r'class="opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', re.S)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("REQUIRE_REAL_SERVICES"):
        pytest.fail("chromium is not installed: apt-get install chromium (.ci/run does it)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def test_docs_page_uses_no_outside_assets(live_server: LiveServer) -> None:
    with urllib.request.urlopen(live_server.base_url + "/api/docs", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        html = response.read().decode()
    assert re.findall(r'(?:src|href)="(https?:)?//', html) == []
    assert '"validatorUrl": null' in html
    for asset in re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html):
        with urllib.request.urlopen(live_server.base_url + asset, timeout=30) as response:
            assert response.status == 200, asset


def test_docs_page_renders_every_operation_in_chromium(live_server: LiveServer, tmp_path: Path) -> None:
    browser = chromium()
    with urllib.request.urlopen(live_server.base_url + "/api/openapi.json", timeout=30) as response:
        document = json.load(response)
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom"]
        + [live_server.base_url + "/api/docs/"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "DatingToday API" in dom
    rendered = {(method.upper(), path) for method, path in _OPERATION_RE.findall(dom)}
    assert rendered == documented, (documented - rendered, rendered - documented)


DRIVER_JS = (Path(__file__).parent / "docs_page_driver.js").read_text()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(chromium(), tmp_path / "profile")
    yield opened
    opened.close()


def _open_docs(browser: Browser, base_url: str) -> None:
    browser.open(base_url + "/api/docs/")
    browser.wait_for("document.querySelectorAll('.opblock').length > 0")
    browser.evaluate(DRIVER_JS)


def _type(browser: Browser, field_id: str, text: str) -> None:
    browser.evaluate(f"__dt.type(document.getElementById({json.dumps(field_id)}), {json.dumps(text)}); true")


@once_per_ci_run
@pytest.mark.parametrize("sign_method", [SIGN_METHOD_HMAC_SHA256, SIGN_METHOD_MD5_LEGACY])
def test_the_page_signs_in_with_an_echoed_code_and_shows_the_own_profile(
    spawn_server, browser: Browser, app: Flask, sign_method: str
) -> None:
    """appkey and appsecret typed once; sendsms, login and user/show tried out from the page, each
    signed in the browser; the login fills userId and token in; the secret never leaves the page."""
    server = spawn_server()  # SMS_ECHO_CODE=1: the sendsms answer carries the code
    creds = make_application(app, sign_method)
    _open_docs(browser, server.base_url)
    _type(browser, "dt-appkey", creds.appkey)
    _type(browser, "dt-appsecret", creds.secret)
    _type(browser, "dt-sign-method", sign_method)

    sent = browser.evaluate("__dt.tryIt('POST', '/api/auth/sendsms', {phone: '13800138000'})", 60)
    assert sent["body"]["code"] == 0, sent
    code = sent["body"]["data"]["code"]
    fields = json.dumps({"phone": "13800138000", "code": code, "latlng": "39.9,116.4"})
    login = browser.evaluate(f"__dt.tryIt('POST', '/api/auth/login', {fields})", 60)
    assert login["body"]["code"] == 0, login
    user_id, token = login["body"]["data"]["user_id"], login["body"]["data"]["token"]
    assert browser.evaluate("document.getElementById('dt-user-id').value") == str(user_id)
    assert "Signed in as user" in browser.evaluate("document.getElementById('dt-signing-status').textContent")

    shown = browser.evaluate("__dt.tryIt('GET', '/api/user/show', {})", 60)
    assert shown["body"]["code"] == 0, shown
    assert shown["body"]["data"]["user_id"] == user_id and shown["body"]["data"]["phone"] == "13800138000"

    # Every API call carried a fresh signature; the secret went nowhere and nothing was stored.
    calls = [r for r in browser.requests_sent() if "/api/auth/" in r["url"] or "/api/user/" in r["url"]]
    assert len(calls) == 3
    for request in calls:
        sent_text = request["url"] + request.get("postData", "")
        assert creds.secret not in sent_text
        assert "sign=" in sent_text and f"appkey={creds.appkey}" in sent_text
    assert token in calls[2]["url"] and f"userId={user_id}" in calls[2]["url"]
    nonces = {re.findall(r"nonce=(\w+)", r["url"] + r.get("postData", ""))[0] for r in calls}
    assert len(nonces) == 3
    stored = browser.evaluate("localStorage.length + sessionStorage.length + document.cookie.length")
    assert stored == 0


@once_per_ci_run
def test_the_page_signs_as_the_client_library_does(live_server: LiveServer, browser: Browser) -> None:
    """The page's signing functions against datingtoday_client.signing on awkward parameters."""
    _open_docs(browser, live_server.base_url)
    cases = [
        {"phone": "13800138000", "code": "123456"},
        {"content": "你好 world!'()*~", "peerId": "7", "clientMsgId": "a b&c=d", "token": "t0k"},
        {"nickname": "Zoë 🙂", "height": "170", "empty-ish": "%20+"},
    ]
    for params in cases:
        params = {**params, "appkey": "K1", "timestamp": "1700000000.5", "nonce": "n1"}
        for method in SIGN_METHODS:
            expected = compute_sign(method, "POST", "/api/user/update", params, "s3cret")
            got = browser.evaluate(
                f"DatingTodaySigning.computeSign('POST', '/api/user/update', {json.dumps(params)}, 's3cret', "
                f"{json.dumps(method)})"
            )
            assert got == expected, (method, params)
