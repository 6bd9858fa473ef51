"""Odd requests a client can send, answered as any bad input is: a JSON error envelope (never
a stack trace or no answer), the metrics' labels bounded, no ERROR log for a client's mistake."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from flask import Flask

from async_handlers import wsgi_container
from tests.conftest import LiveServer
from tests.helpers import ApiClient, SignedInUser
from wsgi_app import metrics


def exchange(port: int, request: bytes, wait_secs: float = 3.0) -> bytes:
    """``request`` sent on a fresh connection; what came back before the close or ``wait_secs``."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_secs) as conn:
        conn.sendall(request)
        deadline = time.monotonic() + wait_secs
        try:
            while time.monotonic() < deadline and b"\r\n\r\n" not in out:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
    return out


@pytest.mark.parametrize("host", [b":", b"example.com:", b"example.com:http"])
def test_a_host_whose_port_is_not_a_number_is_a_400_envelope_on_flask_paths(
    live_server: LiveServer, host: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    out = exchange(live_server.port, b"GET /api/health HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert b"application/json" in out and b"nosniff" in out, out
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_method_nobody_serves_adds_no_metric_label_set(live_server: LiveServer) -> None:
    for path in (b"/api/user/nearby/list", b"/api/time", b"/api/health"):
        exchange(live_server.port, b"WARMUP " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    before = len(metrics._REQUEST_CHILDREN)
    for index in range(5):
        for path in (b"/api/user/nearby/list", b"/api/time", b"/api/health"):
            method = f"M{index}X".encode()
            out = exchange(live_server.port, method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 405 "), out
    assert len(metrics._REQUEST_CHILDREN) == before


def test_a_method_not_allowed_is_no_server_error_in_the_log(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    for method in (b"POST", b"HEAD", b"PATCH"):
        request = method + b" /api/user/nearby/list HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        assert exchange(live_server.port, request).startswith(b"HTTP/1.1 405 ")
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_runtime_error_outside_flask_is_a_500_envelope_not_a_silent_hang(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("WSGI app did not call start_response")

    monkeypatch.setattr(wsgi_container, "run_wsgi_app", broken)
    out = exchange(live_server.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 500 ") and b"application/json" in out, out


@pytest.mark.parametrize("declared", [b"\xb2", b"1\xb2", b"\xb9" * 10])  # Latin-1 superscript digits
def test_a_content_length_of_non_ascii_digits_is_tornados_400_not_an_uncaught_error(
    live_server: LiveServer, declared: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    for path in (b"/api/user/nearby/list?radius=5", b"/api/time", b"/api/health"):
        request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + declared + b"\r\n\r\n"
        assert exchange(live_server.port, request).startswith(b"HTTP/1.1 400 "), path
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", ["/api/user/nearby/list", "/api/user/show"])
def test_a_user_id_of_superscript_digits_is_answered_as_any_non_number(
    app: Flask, live_api: ApiClient, user: SignedInUser, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """'²' passes str.isdigit() but not int(): the prefetch of the claimed user's cache must not
    turn it into a 500."""
    app.config["NEARBY_CELL_CACHE_SECS"] = 300  # the nearby caller's state is prefetched
    answers = [
        (reply.status, reply.code)
        for claimed in ("abc", "\u00b2", f"{user.user_id}\u00b9")
        for reply in [live_api.get(path, {"userId": claimed, "token": user.token})]
    ]
    assert answers[0][0] < 500 and answers == [answers[0]] * 3, answers
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", [b"/api/user/nearby/list", b"/api/health"])
def test_a_query_over_the_field_limit_is_a_400_envelope_on_a_connection_that_stays_open(
    live_server: LiveServer, path: bytes
) -> None:
    """Tornado's limit (1,000 fields) refused such a query with a bare 400 and a close."""
    query = b"&".join(b"f%d=1" % i for i in range(1500))
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as conn:
        for target in (path + b"?" + query, b"/api/time"):
            conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                assert chunk, head
                head += chunk
            headers, _, body = head.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(body) < length:
                body += conn.recv(65536)
            if target.startswith(path):
                assert headers.startswith(b"HTTP/1.1 400 "), headers
                assert b"application/json" in headers and b"nosniff" in headers, headers
                assert b'"code":400' in body.replace(b" ", b""), body
            else:  # the next request on the same connection is served
                assert headers.startswith(b"HTTP/1.1 200 "), headers


def _answer(port: int, request: bytes, wait_secs: float = 5.0) -> tuple[bytes, bytes]:
    """(head, body) of the answer to ``request``, read until the server closes; the body of
    ``request`` (if it declares one) is never sent."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_secs) as conn:
        conn.sendall(request)
        try:
            while chunk := conn.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    head, _, body = out.partition(b"\r\n\r\n")
    return head, body


EDGE_PATHS = [b"/api/health", b"/api/time", b"/api/chat/poll", b"/api/user/nearby/list", b"/api/chat/send"]


@pytest.mark.parametrize("path", EDGE_PATHS)
def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(app: Flask, path: bytes) -> None:
    """Between the limit and 64 MiB the body was read to its end before the 413; the answer now
    comes at once, while the client has sent only the head."""
    app.config["MAX_CONTENT_LENGTH"] = 1024
    live = LiveServer(app)
    try:
        request = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n"
        head, body = _answer(live.port, request)
    finally:
        live.stop()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"application/json" in head and b"nosniff" in head and b"Connection: close" in head
    assert b'"code":413' in body.replace(b" ", b""), body


@pytest.mark.parametrize("path", EDGE_PATHS)
@pytest.mark.parametrize(
    ("extra", "status"),
    [
        (b"?q=" + b"a" * 70_000, b"414"),  # a request line over 64 KiB
        (b"", b"431"),  # a header block over 64 KiB
    ],
)
def test_an_over_long_head_is_answered_in_the_envelope_not_with_a_close(
    live_server: LiveServer, path: bytes, extra: bytes, status: bytes
) -> None:
    big_header = b"" if extra else b"X-Big: " + b"b" * 70_000 + b"\r\n"
    request = b"GET " + path + extra + b" HTTP/1.1\r\nHost: x\r\n" + big_header + b"\r\n"
    head, body = _answer(live_server.port, request)
    assert head.startswith(b"HTTP/1.1 " + status + b" "), head[:200]
    assert b"application/json" in head and b"nosniff" in head
    assert b'"code":' + status in body.replace(b" ", b""), body
