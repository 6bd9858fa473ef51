"""``tornado_server.py`` itself: real Tornado servers on free ports, real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import urllib.request
from typing import Any

import pytest
from flask import Flask

from async_handlers.wsgi_container import run_wsgi_app
from tests.conftest import LiveServer
from tests.helpers import ApiClient, HttpTransport
from tornado_server import parse_args
from wsgi_app import create_app
from wsgi_app.services.auth.applications import AppCredentials


def _get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def test_signed_flask_calls_through_tornado(live_api: ApiClient, app: Flask) -> None:
    app.config["SMS_ECHO_CODE"] = True
    sent = live_api.post("/api/auth/sendsms", {"phone": "13800138000"})
    assert sent.status == 200, sent.body
    login = live_api.post("/api/auth/login", {"phone": "13800138000", "code": sent.data["code"]})
    assert login.status == 200, login.body
    show = live_api.get("/api/user/show", {"userId": login.data["user_id"], "token": login.data["token"]})
    assert show.status == 200, show.body
    assert show.data["phone"] == "13800138000"


def test_errors_through_tornado_are_envelopes(live_server: LiveServer, live_api: ApiClient) -> None:
    status, body, _ = _get_json(live_server.base_url + "/api/nope")
    assert (status, body["code"]) == (404, 404)
    replay = live_api.post("/api/auth/sendsms", {"phone": "13800138000"}, nonce="dup")
    again = live_api.post("/api/auth/sendsms", {"phone": "13800138001"}, nonce="dup")
    assert replay.status == 200
    assert (again.status, again.code) == (409, 509)


def test_native_handler_is_routed_with_envelope_and_request_id(live_server: LiveServer) -> None:
    status, body, headers = _get_json(live_server.base_url + "/api/time", {"X-Request-Id": "native-1"})
    assert status == 200
    assert body["code"] == 0 and abs(body["data"]["timestamp"] - time.time()) < 60
    assert headers["X-Request-Id"] == "native-1"
    assert headers["Content-Type"].startswith("application/json")


def test_native_handler_wrong_method_is_an_envelope(live_server: LiveServer) -> None:
    request = urllib.request.Request(live_server.base_url + "/api/time", data=b"x=1", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("expected 405")
    except urllib.error.HTTPError as err:
        assert err.code == 405
        assert json.loads(err.read())["code"] == 405


def test_client_ip_comes_from_x_forwarded_for_behind_nginx(live_server: LiveServer, app: Flask) -> None:
    seen: list[str | None] = []

    @app.route("/api/test-ip")
    def test_ip() -> dict[str, Any]:
        from flask import request

        seen.append(request.remote_addr)
        return {"code": 0, "msg": "success", "data": {}}

    _get_json(live_server.base_url + "/api/test-ip", {"X-Forwarded-For": "203.0.113.9"})
    assert seen == ["203.0.113.9"]


def test_event_loop_stays_free_while_every_flask_thread_is_busy(
    base_config: dict[str, Any], migrated_database: str
) -> None:
    app = create_app(dict(base_config))
    release = threading.Event()
    entered = threading.Semaphore(0)

    @app.route("/api/test-slow")
    def slow() -> dict[str, Any]:
        entered.release()
        release.wait(20)
        return {"code": 0, "msg": "success", "data": {}}

    server = LiveServer(app)
    try:
        workers = server.service.executor._max_workers
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(_get_json(server.base_url + "/api/test-slow")[0]))
            for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        for _ in range(workers):
            assert entered.acquire(timeout=10), "slow requests did not all start"
        # Every worker thread is now blocked inside Flask; the loop must still answer.
        status, body, _ = _get_json(server.base_url + "/api/time")
        assert status == 200 and body["code"] == 0
        assert results == []  # the slow ones are still in flight
        release.set()
        for thread in threads:
            thread.join(20)
        assert results == [200] * workers
    finally:
        release.set()
        server.stop()


def test_whole_wsgi_call_is_one_job_and_closes_the_body() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self):
            yield b"a"
            yield b"b"

        def close(self) -> None:
            closed.append(True)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("201 Created", [("X-T", "1")])
        return Body()

    status, headers, body = run_wsgi_app(wsgi, {})
    assert (status, headers, body, closed) == ("201 Created", [("X-T", "1")], b"ab", [True])


def test_port_from_argument_then_environment(monkeypatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    assert parse_args([]).port == 8000
    monkeypatch.setenv("PORT", "8123")
    assert parse_args([]).port == 8123
    assert parse_args(["--port", "9001"]).port == 9001


def test_server_process_serves_the_api_and_exits_on_sigterm(spawn_server, creds: AppCredentials) -> None:
    server = spawn_server()
    api = ApiClient(HttpTransport(server.base_url), creds)
    sent = api.post("/api/auth/sendsms", {"phone": "13800138111"})
    assert sent.status == 200, sent.body
    login = api.post("/api/auth/login", {"phone": "13800138111", "code": sent.data["code"]})
    assert login.status == 200, login.body
    status, body, _ = _get_json(server.base_url + "/api/health")
    assert (status, body["data"]) == (200, {"database": "ok", "redis": "ok"})
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    assert time.monotonic() - started < 12
    assert "shutting down" in server.output()


def test_native_and_flask_answers_serialise_the_envelope_alike(live_server: LiveServer) -> None:
    with urllib.request.urlopen(live_server.base_url + "/api/time", timeout=10) as response:
        native = response.read().decode()
    with urllib.request.urlopen(live_server.base_url + "/api/health", timeout=10) as response:
        flask_side = response.read().decode()
    assert native.startswith('{"code":0,"data":{') and native.endswith('},"msg":"success"}')
    assert flask_side.startswith('{"code":0,"data":{') and flask_side.rstrip().endswith('},"msg":"success"}')


def _threads_cpus(pid: int) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to pin to")
def test_every_thread_of_a_server_keeps_to_the_cpu_its_port_picks(spawn_server) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    pinned = spawn_server(CPU_AFFINITY="auto")
    free = spawn_server(CPU_AFFINITY="off")
    for server in (pinned, free):  # a Flask request starts the pool's threads
        status, _, _ = _get_json(server.base_url + "/api/health")
        assert status == 200
    assert _threads_cpus(pinned.proc.pid) == {frozenset({allowed[pinned.port % len(allowed)]})}
    assert _threads_cpus(free.proc.pid) == {frozenset(allowed)}
    assert len(os.listdir(f"/proc/{pinned.proc.pid}/task")) > 1


def test_the_startup_heap_is_frozen_before_the_first_request(spawn_server) -> None:
    """Full collections walk only what requests created (``process_setup.freeze_startup_objects``)."""
    server = spawn_server()
    status, _, _ = _get_json(server.base_url + "/api/health")
    assert status == 200
    assert server.stop() == 0
    output = server.output()
    found = re.search(r"(\d+) startup objects frozen", output)
    assert found, output[-2000:]
    assert int(found.group(1)) > 50_000  # Flask, SQLAlchemy and the app: far more than this
