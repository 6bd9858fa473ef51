"""Long-poll across real server processes: shared Redis, restarts, SIGTERM, catch-up."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from tests.chat_support import send_text, sent_id
from tests.conftest import LiveServer
from tests.helpers import ApiClient, HttpTransport, Reply, SignedInUser
from wsgi_app.extensions import redis_client
from wsgi_app.redis_client import is_embedded
from wsgi_app.services.auth.applications import AppCredentials


def require_real_redis(base_config: dict[str, Any]) -> None:
    """Skip on the embedded default (each process has its own in-memory Redis there);
    fail instead when the run demands real services."""
    if not is_embedded(base_config["REDIS_URL"]):
        return
    reason = "needs a real Redis shared by processes: set REDIS_URL=redis://..."
    if os.environ.get("REQUIRE_REAL_SERVICES"):
        pytest.fail(reason + " (REQUIRE_REAL_SERVICES is set)")
    pytest.skip(reason)


WAITING_POLLS_RE = re.compile(r"^dt_waiting_polls(?:\{[^}]*\})? (\S+)$", re.M)


def wait_for_parked_polls(base_url: str, count: int, timeout_secs: float = 10.0) -> None:
    """Until the process reports ``count`` parked polls (its ``/metrics`` gauge, sampled each second)."""
    deadline = time.monotonic() + timeout_secs
    seen = None
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base_url + "/metrics", timeout=5) as response:
            match = WAITING_POLLS_RE.search(response.read().decode())
        seen = float(match.group(1)) if match else None
        if seen is not None and seen >= count:
            return
        time.sleep(0.05)
    raise AssertionError(
        f"{count} polls never parked on {base_url} within {timeout_secs} s (last seen: {seen})"
    )


def poll(api: ApiClient, user: SignedInUser, cursor: int | None) -> Reply:
    return api.get("/api/chat/poll", {} if cursor is None else {"cursor": cursor}, user=user)


def test_message_sent_through_one_process_reaches_a_poller_on_another(
    spawn_server, base_config: dict[str, Any], creds: AppCredentials, auth
) -> None:
    require_real_redis(base_config)
    sender_side = ApiClient(HttpTransport(spawn_server(LONGPOLL_TIMEOUT_SECS="20").base_url), creds)
    poller_server = spawn_server(LONGPOLL_TIMEOUT_SECS="20")
    poller_side = ApiClient(HttpTransport(poller_server.base_url), creds)
    alice, bob = auth.login(), auth.login()
    cursor = poll(poller_side, alice, None).data["cursor"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(poll, poller_side, alice, cursor)
        wait_for_parked_polls(poller_server.base_url, 1)  # the wake-up must cross processes
        assert not waiting.done()
        started = time.monotonic()
        msg_id = sent_id(send_text(sender_side, bob, alice, "across processes"))
        reply = waiting.result(15)
    assert time.monotonic() - started < 10  # woken, not timed out (20 s)
    assert [m["msg_id"] for m in reply.data["list"]] == [msg_id]


def test_poll_on_another_process_catches_up_exactly_once(spawn_server, creds: AppCredentials, auth) -> None:
    """A client whose process went away re-polls another with its cursor: nothing lost or repeated."""
    first = spawn_server(LONGPOLL_TIMEOUT_SECS="1")
    second = spawn_server(LONGPOLL_TIMEOUT_SECS="1")
    on_first = ApiClient(HttpTransport(first.base_url), creds)
    on_second = ApiClient(HttpTransport(second.base_url), creds)
    alice, bob = auth.login(), auth.login()
    early = sent_id(send_text(on_first, bob, alice, "early"))
    got = poll(on_first, alice, 0).data
    assert [m["msg_id"] for m in got["list"]] == [early]
    first.stop()  # the process restarts; messages keep coming through another
    late = [sent_id(send_text(on_second, bob, alice, f"late {i}")) for i in range(3)]
    caught_up = poll(on_second, alice, got["cursor"]).data
    assert [m["msg_id"] for m in caught_up["list"]] == late
    again = poll(on_second, alice, caught_up["cursor"]).data
    assert again == {"list": [], "cursor": late[-1], "has_more": False}


def test_sigterm_answers_waiting_polls_at_once_and_exits(spawn_server, creds: AppCredentials, auth) -> None:
    server = spawn_server(LONGPOLL_TIMEOUT_SECS="60")
    api = ApiClient(HttpTransport(server.base_url), creds)
    alice, bob = auth.login(), auth.login()
    cursor = sent_id(send_text(api, bob, alice, "seen already"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = [pool.submit(poll, api, alice, cursor) for _ in range(2)]
        wait_for_parked_polls(server.base_url, 2)  # SIGTERM must answer parked polls, not racing ones
        assert not any(w.done() for w in waiting)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        replies = [w.result(10) for w in waiting]
    assert time.monotonic() - started < 5
    for reply in replies:
        assert reply.status == 200
        assert reply.data == {"list": [], "cursor": cursor, "has_more": False}
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 10


def _pubsub_local_port(server: LiveServer) -> int:
    listener = server.service.context.listener

    async def local_port() -> int:
        connection = listener._pubsub.connection
        return connection._writer.get_extra_info("sockname")[1]

    assert server._loop is not None
    return asyncio.run_coroutine_threadsafe(local_port(), server._loop).result(5)


def test_killed_pubsub_connection_reconnects_without_losing_messages(
    live_server: LiveServer, live_api: ApiClient, app: Flask, base_config: dict[str, Any], auth
) -> None:
    """On a real Redis: CLIENT KILL the listener's connection, as a Redis restart would."""
    require_real_redis(base_config)
    app.config["LONGPOLL_TIMEOUT_SECS"] = 20
    alice, bob = auth.login(), auth.login()
    listener = live_server.service.context.listener
    deadline = time.monotonic() + 5
    while not listener.subscribed.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    connects = listener.connect_count
    port = _pubsub_local_port(live_server)
    with app.app_context():
        assert redis_client().execute_command("CLIENT", "KILL", "ADDR", f"127.0.0.1:{port}") in (
            True,
            "OK",
            1,
        )
        # Sent while the subscription is down: found by the catch-up wake or the next poll.
        missed = sent_id(send_text(live_api, bob, alice, "during the outage"))
    deadline = time.monotonic() + 10
    while listener.connect_count <= connects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.connect_count > connects, "listener did not resubscribe"
    assert [m["msg_id"] for m in poll(live_api, alice, 0).data["list"]] == [missed]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(poll, live_api, alice, missed)
        waiters = live_server.service.context.waiters
        deadline = time.monotonic() + 10
        while waiters.count() < 1 and time.monotonic() < deadline:  # parked: the wake must do the work
            time.sleep(0.02)
        assert waiters.count() == 1 and not waiting.done()
        started = time.monotonic()
        after = sent_id(send_text(live_api, bob, alice, "after the reconnect"))
        reply = waiting.result(15)
    assert time.monotonic() - started < 10
    assert [m["msg_id"] for m in reply.data["list"]] == [after]
