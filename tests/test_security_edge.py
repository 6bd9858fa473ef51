"""Security at the edge: secrets at start-up, who may name the client address, oversized bodies,
headers on every answer, ASCII-only numbers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from flask import Flask

from tests.conftest import REPO_ROOT, LiveServer, free_port
from tests.helpers import ApiClient, HttpTransport
from wsgi_app import create_app
from wsgi_app.config import InsecureConfigError
from wsgi_app.services.auth.applications import AppCredentials

GOOD_SECRETS = {"SECRET_KEY": "k" * 32, "PAYMENT_PROVIDER_SECRET": "p" * 32}


def _prod_config(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db", "DEV_MODE": False, **overrides}


@pytest.mark.parametrize(
    "secrets",
    [
        {},
        {**GOOD_SECRETS, "SECRET_KEY": "dev-only-secret-change-me"},
        {**GOOD_SECRETS, "PAYMENT_PROVIDER_SECRET": "dev-only-payment-secret"},
        {**GOOD_SECRETS, "PAYMENT_PROVIDER_SECRET": ""},
        {**GOOD_SECRETS, "SECRET_KEY": "short"},
        {**GOOD_SECRETS, "SMS_ECHO_CODE": True},
    ],
)
def test_production_refuses_development_secrets(monkeypatch, tmp_path, secrets: dict[str, Any]) -> None:
    for name in ("SECRET_KEY", "PAYMENT_PROVIDER_SECRET", "SMS_ECHO_CODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DEV_MODE")
    with pytest.raises(InsecureConfigError, match="DEV_MODE=1"):
        create_app(_prod_config(tmp_path, **secrets))


def test_production_starts_with_real_secrets_and_development_mode_allows_defaults(tmp_path) -> None:
    assert create_app(_prod_config(tmp_path, **GOOD_SECRETS)).config["SECRET_KEY"] == "k" * 32
    assert create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/d.db", "DEV_MODE": True})


def test_server_process_exits_with_a_message_without_secrets(server_env: dict[str, str]) -> None:
    env = {**server_env, "DEV_MODE": "0", "SMS_ECHO_CODE": "0"}
    env.pop("PAYMENT_PROVIDER_SECRET", None)
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tornado_server.py"), "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "PAYMENT_PROVIDER_SECRET" in done.stderr and "Traceback" not in done.stderr


# -- client address -------------------------------------------------------------------


def _send_from_rotating_addresses(live: LiveServer, creds: AppCredentials) -> list[int]:
    api = ApiClient(HttpTransport(live.base_url), creds)
    statuses = []
    for i in range(3):
        headers = {"X-Real-IP": f"203.0.113.{i + 1}", "X-Forwarded-For": f"198.51.100.{i + 1}"}
        reply = api.post("/api/auth/sendsms", {"phone": f"1390000010{i}"}, headers=headers)
        statuses.append(reply.status)
    return statuses


def test_proxy_headers_from_an_untrusted_peer_do_not_change_the_address(
    app: Flask, creds: AppCredentials
) -> None:
    app.config.update(TRUSTED_PROXIES=["10.1.2.3"], SMS_IP_LIMITS=[(2, 3600)])
    live = LiveServer(app)
    try:
        assert _send_from_rotating_addresses(live, creds) == [200, 200, 429]
    finally:
        live.stop()


def test_proxy_headers_from_a_trusted_proxy_name_the_client(app: Flask, creds: AppCredentials) -> None:
    app.config.update(TRUSTED_PROXIES=["127.0.0.0/8"], SMS_IP_LIMITS=[(2, 3600)])
    live = LiveServer(app)
    try:
        assert _send_from_rotating_addresses(live, creds) == [200, 200, 200]
    finally:
        live.stop()


# -- oversized bodies and headers ------------------------------------------------------


def _raw_request(port: int, request: bytes, body_chunks: int = 0, chunk: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        try:
            for _ in range(body_chunks):
                sock.sendall(chunk)
        except OSError:
            pass  # the server may answer and close before the body is all sent
        if body_chunks:
            # Half-close only after a body: a FIN that arrives with the headers may reach the
            # server before it answers, and an answer to a closed connection goes nowhere.
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            received += data
    return received


def _status_and_body(raw: bytes) -> tuple[int, dict[str, Any], str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), head.decode("latin-1").lower()


@pytest.mark.parametrize("declared_bytes", [4096, 200 * 1024 * 1024])
def test_a_body_over_the_limit_is_a_413_envelope(app: Flask, declared_bytes: int) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    live = LiveServer(app)
    try:
        head = (
            f"POST /api/auth/sendsms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {declared_bytes}\r\nConnection: close\r\n\r\n"
        ).encode()
        chunks = 4 if declared_bytes == 4096 else 0
        status, body, headers = _status_and_body(_raw_request(live.port, head, chunks, b"a" * 1024))
    finally:
        live.stop()
    assert (status, body["code"]) == (413, 413)
    assert "x-content-type-options: nosniff" in headers


def test_a_chunked_body_over_the_limit_is_a_413_envelope(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    live = LiveServer(app)
    try:
        head = (
            b"POST /api/auth/sendsms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        # Past the limit and Tornado's own headroom (1 MiB), where Tornado alone answers a bare 400.
        body = (b"10000\r\n" + b"a" * 0x10000 + b"\r\n") * 40 + b"0\r\n\r\n"
        raw = _raw_request(live.port, head + body)
    finally:
        live.stop()
    status, answer, _ = _status_and_body(raw)
    assert (status, answer["code"]) == (413, 413)


def test_flask_and_native_answers_and_uploads_are_nosniff(app: Flask, client, live_server) -> None:
    flask_reply = client.get("/api/health")
    assert flask_reply.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/api/nope").headers["X-Content-Type-Options"] == "nosniff"
    with open(app.config["UPLOAD_FOLDER"] + "/x.txt", "w") as out:
        out.write("<html>")
    served = client.get("/uploads/x.txt")
    assert served.status_code == 200 and served.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/api/time", "/api/chat/poll", "/api/health"):
        request = urllib.request.Request(live_server.base_url + path)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                headers = response.headers
        except urllib.error.HTTPError as err:
            headers = err.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Cache-Control"] == "no-store", path
        assert "Server" not in headers, path  # no TornadoServer/<version> banner


def test_token_and_code_answers_are_not_cached(app: Flask, api: ApiClient) -> None:
    app.config["SMS_ECHO_CODE"] = True
    sent = api.post("/api/auth/sendsms", {"phone": "13800138000"})
    login = api.post("/api/auth/login", {"phone": "13800138000", "code": sent.data["code"]})
    assert login.status == 200
    assert sent.headers["Cache-Control"] == "no-store" and login.headers["Cache-Control"] == "no-store"


# -- ASCII digits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"height": "１８０"}, {"height": "1٨0"}, {"salary": "５"}, {"birthday": "２０００-01-01"}],
)
def test_numbers_accept_ascii_digits_only(api: ApiClient, user, params: dict[str, str]) -> None:
    reply = api.post("/api/user/update", params, user=user)
    assert (reply.status, reply.code) == (400, 300), reply.body
    shown = api.get("/api/user/show", user=user)
    assert shown.data["height"] is None and shown.data["salary"] in (None, 0)


def test_phone_and_latlng_patterns_refuse_other_digits(api: ApiClient) -> None:
    assert api.post("/api/auth/sendsms", {"phone": "１３８００１３８０００"}).code == 300
    assert api.post("/api/auth/login", {"phone": "13800138000", "code": "１２３４５６"}).code == 300


UNTRUSTED, TRUSTED = ["10.1.2.3"], ["127.0.0.0/8"]


@pytest.mark.parametrize(
    ("name", "trusted", "second_status"),
    [
        ("X-Request-Id", UNTRUSTED, 409),
        ("X-Request-Id", TRUSTED, 200),
        # The WSGI environ spells these HTTP_X_REQUEST_ID too: dropped from any sender.
        *(
            (name, trusted, 409)
            for name in ("X_Request_Id", "x_request-id", "X-Request_Id")
            for trusted in (UNTRUSTED, TRUSTED)
        ),
    ],
)
def test_only_a_trusted_proxys_request_id_makes_a_resend_pass(
    app: Flask, creds: AppCredentials, name: str, trusted: list[str], second_status: int
) -> None:
    """Behind nginx a resend keeps nginx's X-Request-Id and passes the nonce check; straight to
    a Tornado port, a captured request replayed with the id its answer carried must not, nor
    with the id under a name that has an underscore (nginx drops those names too)."""
    app.config.update(TRUSTED_PROXIES=trusted)
    live = LiveServer(app)
    try:
        api = ApiClient(HttpTransport(live.base_url), creds)
        signed = api.signed("GET", "/api/vip/products", {})
        statuses = [
            api.transport.send("GET", "/api/vip/products", signed, None, {name: "9f1c0c1e"}).status
            for _ in range(2)
        ]
        assert statuses == [200, second_status]
    finally:
        live.stop()


# -- urlencoded bodies of many fields ---------------------------------------------------


def _form_post(path: str, fields: int) -> bytes:
    body = b"appkey=MADEUP0000000000&" + b"&".join(b"f%d=1" % i for i in range(fields - 1))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8"
        f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


@pytest.mark.parametrize("path", ["/api/auth/sendsms", "/api/chat/send", "/api/user/update"])
def test_a_form_body_of_too_many_fields_is_refused_before_any_parsing(app: Flask, path: str) -> None:
    """600,000 fields with a made-up appkey (5.6 MiB, under the body limit): the Flask path
    parsed them all (seconds of CPU) before its 507; every path now answers 400 at the edge."""
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    live = LiveServer(app)
    try:
        status, body, headers = _status_and_body(_raw_request(live.port, _form_post(path, 600_000)))
        assert (status, body["code"]) == (400, 400), body
        assert "application/json" in headers and "x-content-type-options: nosniff" in headers
        # At the limit (as many fields as Tornado and parse_qsl allow) the request goes on:
        status, body, _ = _status_and_body(_raw_request(live.port, _form_post(path, 1000)))
        assert body["code"] != 400, body
    finally:
        live.stop()
