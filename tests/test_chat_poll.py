"""The native long-poll ``GET /api/chat/poll`` on a real Tornado server (real HTTP)."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask

from tests.chat_support import block, send_text, sent_id
from tests.conftest import LiveServer
from tests.helpers import ApiClient, HttpTransport, Reply, SignedInUser, wait_until

WAKE_TIMEOUT_SECS = 10.0  # a poll woken by a message must answer long before this


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


def poll(api: ApiClient, user: SignedInUser, cursor: int | None, **params: Any) -> Reply:
    query = {**({"cursor": cursor} if cursor is not None else {}), **params}
    return api.get("/api/chat/poll", query, user=user)


def waiting(server: LiveServer) -> int:
    return server.service.context.waiters.count()


def test_poll_returns_the_backlog_at_once_in_order(live_api: ApiClient, app: Flask, auth) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice, bob, carol = auth.login(), auth.login(), auth.login()
    ids = [sent_id(send_text(live_api, s, alice, f"m{i}")) for i, s in enumerate([bob, carol, bob])]
    send_text(live_api, alice, bob, "not to alice")
    started = time.monotonic()
    reply = poll(live_api, alice, 0)
    assert time.monotonic() - started < 5
    assert reply.status == 200, reply.body
    assert [m["msg_id"] for m in reply.data["list"]] == ids
    assert [m["content"] for m in reply.data["list"]] == ["m0", "m1", "m2"]
    assert reply.data["cursor"] == ids[-1] and reply.data["has_more"] is False
    # Bounded batches: has_more, and the next poll continues exactly after the cursor.
    first = poll(live_api, alice, 0, limit=2)
    assert [m["msg_id"] for m in first.data["list"]] == ids[:2] and first.data["has_more"] is True
    rest = poll(live_api, alice, first.data["cursor"], limit=2)
    assert [m["msg_id"] for m in rest.data["list"]] == ids[2:] and rest.data["has_more"] is False


def test_poll_without_cursor_gives_the_current_cursor_at_once(live_api: ApiClient, auth) -> None:
    alice, bob = auth.login(), auth.login()
    assert poll(live_api, alice, None).data == {"list": [], "cursor": 0, "has_more": False}
    last = sent_id(send_text(live_api, bob, alice, "x"))
    assert poll(live_api, alice, None).data == {"list": [], "cursor": last, "has_more": False}


def test_poll_wakes_when_a_message_is_sent_through_flask(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, pool
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice, bob = auth.login(), auth.login()
    cursor = poll(live_api, alice, None).data["cursor"]
    waiting_poll: Future[Reply] = pool.submit(poll, live_api, alice, cursor)
    assert wait_until(lambda: waiting(live_server) == 1), "the poll did not park"
    assert not waiting_poll.done()
    started = time.monotonic()
    msg_id = sent_id(send_text(live_api, bob, alice, "wake up"))
    reply = waiting_poll.result(WAKE_TIMEOUT_SECS)
    assert time.monotonic() - started < WAKE_TIMEOUT_SECS
    assert [m["msg_id"] for m in reply.data["list"]] == [msg_id]
    assert reply.data["cursor"] == msg_id
    assert wait_until(lambda: waiting(live_server) == 0)


def test_a_message_to_someone_else_does_not_answer_my_poll(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, pool
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 1.5
    alice, bob, carol = auth.login(), auth.login(), auth.login()
    waiting_poll = pool.submit(poll, live_api, alice, 0)
    assert wait_until(lambda: waiting(live_server) == 1)
    send_text(live_api, bob, carol, "for carol")
    reply = waiting_poll.result(WAKE_TIMEOUT_SECS)
    assert reply.data == {"list": [], "cursor": 0, "has_more": False}


def test_poll_times_out_with_the_same_cursor(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 1
    alice, bob = auth.login(), auth.login()
    last = sent_id(send_text(live_api, bob, alice, "old"))
    started = time.monotonic()
    reply = poll(live_api, alice, last)
    elapsed = time.monotonic() - started
    assert reply.status == 200
    assert reply.data == {"list": [], "cursor": last, "has_more": False}
    assert elapsed >= 0.9
    assert waiting(live_server) == 0


def test_disconnecting_poller_leaves_no_waiter(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice = auth.login()
    for _ in range(3):
        query = live_api.signed("GET", "/api/chat/poll", {**alice.params(), "cursor": "0"})
        sock = socket.create_connection(("127.0.0.1", live_server.port), timeout=5)
        request = f"GET /api/chat/poll?{urlencode(query)} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        sock.sendall(request.encode())
        assert wait_until(lambda: waiting(live_server) == 1), "the poll did not park"
        sock.close()
        assert wait_until(lambda: waiting(live_server) == 0), "the waiter leaked"
    assert live_server.service.context.waiters.users() == set()


def test_many_waiters_of_one_user_all_wake(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, pool
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice, bob = auth.login(), auth.login()
    polls = [pool.submit(poll, live_api, alice, 0) for _ in range(3)]
    assert wait_until(lambda: waiting(live_server) == 3)
    msg_id = sent_id(send_text(live_api, bob, alice, "to every device"))
    for waiting_poll in polls:
        assert [m["msg_id"] for m in waiting_poll.result(WAKE_TIMEOUT_SECS).data["list"]] == [msg_id]


def test_poll_refuses_another_users_token_and_bad_cursor(live_api: ApiClient, auth) -> None:
    alice, bob = auth.login(), auth.login()
    forged = SignedInUser(alice.user_id, bob.token, alice.phone)
    reply = poll(live_api, forged, 0)
    assert (reply.status, reply.code) == (401, 504)
    unsigned = live_api.transport.send("GET", "/api/chat/poll", {"cursor": "0"}, None, {})
    assert unsigned.status == 400 and unsigned.code == 300
    for bad in ("-1", "abc"):
        reply = live_api.get("/api/chat/poll", {"cursor": bad}, user=alice)
        assert (reply.status, reply.code) == (400, 300)


def test_poll_leaves_out_messages_from_blocked_users(live_api: ApiClient, app: Flask, auth) -> None:
    alice, bob, carol = auth.login(), auth.login(), auth.login()
    send_text(live_api, bob, alice, "before the block")
    ok = sent_id(send_text(live_api, carol, alice, "fine"))
    block(app, alice, bob)
    reply = poll(live_api, alice, 0)
    assert [m["msg_id"] for m in reply.data["list"]] == [ok]


def test_catch_up_after_a_missed_wake_is_exactly_once(live_api: ApiClient, auth) -> None:
    """A client that was away gets everything it missed on its next poll, once."""
    alice, bob = auth.login(), auth.login()
    cursor = poll(live_api, alice, None).data["cursor"]
    ids = [sent_id(send_text(live_api, bob, alice, f"while away {i}")) for i in range(5)]
    seen: list[int] = []
    while True:
        reply = poll(live_api, alice, cursor, limit=2)
        seen.extend(m["msg_id"] for m in reply.data["list"])
        cursor = reply.data["cursor"]
        if not reply.data["has_more"]:
            break
    assert seen == ids


def test_listener_reconnects_and_wakes_waiters_after_losing_redis(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, pool
) -> None:
    import asyncio

    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice, bob = auth.login(), auth.login()
    listener = live_server.service.context.listener
    assert wait_until(lambda: listener.subscribed.is_set())
    connects = listener.connect_count
    waiting_poll = pool.submit(poll, live_api, alice, 0)
    assert wait_until(lambda: waiting(live_server) == 1)
    assert live_server._loop is not None
    asyncio.run_coroutine_threadsafe(listener.drop_connection_for_testing(), live_server._loop).result(5)
    assert wait_until(lambda: listener.connect_count > connects, 10), "listener did not resubscribe"
    msg_id = sent_id(send_text(live_api, bob, alice, "after the reconnect"))
    assert [m["msg_id"] for m in waiting_poll.result(WAKE_TIMEOUT_SECS).data["list"]] == [msg_id]


def test_loop_and_polls_stay_responsive_while_flask_is_busy(
    base_config: dict[str, Any], migrated_database: str, auth, app: Flask
) -> None:
    from wsgi_app import create_app

    busy_app = create_app(dict(base_config))
    release = threading.Event()
    entered = threading.Semaphore(0)

    @busy_app.route("/api/test-slow")
    def slow() -> dict[str, Any]:
        entered.release()
        release.wait(20)
        return {"code": 0, "msg": "success", "data": {}}

    alice, bob = auth.login(), auth.login()
    server = LiveServer(busy_app)
    api = ApiClient(HttpTransport(server.base_url), auth.api.creds)
    msg_id = sent_id(send_text(api, bob, alice, "backlog"))
    workers = server.service.executor._max_workers
    try:
        with ThreadPoolExecutor(max_workers=workers * 2) as slow_pool:
            slow_calls = [
                slow_pool.submit(api.transport.send, "GET", "/api/test-slow", None, None, {})
                for _ in range(workers * 2)
            ]
            for _ in range(workers):
                assert entered.acquire(timeout=10), "slow requests did not all start"
            # Every Flask thread is blocked and more requests queue behind them;
            # native handlers (loop + their own pool) still answer quickly.
            started = time.monotonic()
            reply = poll(api, alice, 0)
            assert [m["msg_id"] for m in reply.data["list"]] == [msg_id]
            time_reply = api.transport.send("GET", "/api/time", None, None, {})
            assert time_reply.status == 200
            assert time.monotonic() - started < 5
            assert not any(call.done() for call in slow_calls)
            release.set()
            assert all(call.result(30).status == 200 for call in slow_calls)
    finally:
        release.set()
        server.stop()


def test_a_parked_poll_sheds_its_request_but_answers_with_cors_and_keeps_alive(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth
) -> None:
    import http.client

    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    app.config["CORS_ORIGINS"] = ["https://app.example"]
    alice, bob = auth.login(), auth.login()
    cursor = poll(live_api, alice, None).data["cursor"]
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=WAKE_TIMEOUT_SECS)
    headers = {"Origin": "https://app.example", "X-Request-Id": "parked-1", "User-Agent": "probe"}
    for round_ in range(2):  # the same connection serves a second poll after the first answer
        query = live_api.signed("GET", "/api/chat/poll", {**alice.params(), "cursor": str(cursor)})
        conn.request("GET", f"/api/chat/poll?{urlencode(query)}", headers=headers)
        assert wait_until(lambda: waiting(live_server) == 1), "the poll did not park"
        msg_id = sent_id(send_text(live_api, bob, alice, f"wake {round_}"))
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        assert response.getheader("Access-Control-Allow-Origin") == "https://app.example"
        assert response.getheader("X-Request-Id") == "parked-1"
        assert response.getheader("Connection") != "close"
        assert f'"cursor":{msg_id}'.encode() in body
        cursor = msg_id
    conn.close()
