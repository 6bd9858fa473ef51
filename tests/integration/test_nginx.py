"""nginx of the running stack: its own refusals in the envelope, no credentials in its logs, no version."""

from __future__ import annotations

import socket

import pytest

from deploy import Stack
from tests.integration.load import Client, Person
from wsgi_app import errors
from wsgi_app.services.auth.applications import AppCredentials

pytestmark = pytest.mark.integration


def raw_request(stack: Stack, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((stack.settings.bind_address, stack.settings.nginx_port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def http(request_line: bytes, *headers: bytes) -> bytes:
    return request_line + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"".join(headers) + b"\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "spec"),
    [
        (http(b"GET /api/health?x=" + b"a" * 10000), 414, errors.URI_TOO_LONG),
        (http(b"GET /api/health", b"X-Big: " + b"b" * 10000 + b"\r\n"), 431, errors.HEADERS_TOO_LARGE),
        (http(b"TRACE /api/health"), 405, errors.METHOD_NOT_ALLOWED),
        (http(b"GET /nothing-here"), 404, errors.NOT_FOUND),
        (http(b"POST /api/auth/login", b"Content-Length: 20000000\r\n"), 413, errors.PAYLOAD_TOO_LARGE),
        (b"BROKEN\r\n\r\n", 400, errors.BAD_REQUEST),
    ],
)
def test_nginx_refusals_are_json_envelopes(stack: Stack, request_bytes: bytes, status: int, spec) -> None:
    got_status, headers, body = raw_request(stack, request_bytes)
    assert got_status == status
    assert headers.get("Content-Type") == "application/json"
    assert body.decode() == errors.dumps_envelope(errors.error_body(spec))
    assert headers.get("Server") == "nginx"  # server_tokens off: no version


def test_nginx_logs_hold_no_token_sign_or_nonce(stack: Stack, stack_creds: AppCredentials) -> None:
    client = Client(stack.base_url, stack_creds)
    _, sent = client.call("POST", "/api/auth/sendsms", {"phone": "13612345678"})
    _, login = client.call("POST", "/api/auth/login", {"phone": "13612345678", "code": sent["data"]["code"]})
    person = Person(login["data"]["user_id"], login["data"]["token"])
    call, _ = client.call("GET", "/api/user/show", {}, person)
    assert not call.failed
    client.call("GET", "/api/user/show", {"sign": "0" * 64}, person)  # refused: still not logged
    logs = "".join(p.read_text() for p in (stack.settings.nginx_prefix / "logs").glob("*.log"))
    assert "GET /api/user/show HTTP/1.1" in logs
    for secret in (person.token, sent["data"]["code"], "token=", "sign=", "nonce=", "code="):
        assert secret not in logs
