"""The parked long-poll's lean path (``async_handlers.chat_poll`` + ``detached``) and the timeout wheel.

What a parked poll must not leak (client gone: registry, wheel and poll objects
all empty), and what its answers written straight to the stream must carry
(envelope, status, X-Request-Id, CORS and security headers, keep-alive or
``Connection: close``), including while the process drains.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import random
import socket
from collections import Counter
from urllib.parse import urlencode

from flask import Flask

from async_handlers.chat_poll import Poll
from async_handlers.timeout_wheel import TimeoutWheel
from tests.conftest import LiveServer
from tests.helpers import ApiClient, SignedInUser, assert_native_answer, wait_until

PATH = "/api/chat/poll"


def poll_target(api: ApiClient, user: SignedInUser, **params: str) -> str:
    return f"{PATH}?{urlencode(api.signed('GET', PATH, {**user.params(), **params}))}"


def raw_poll(server: LiveServer, target: str, version: str = "HTTP/1.1", extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET {target} {version}\r\nHost: localhost\r\n{extra}\r\n".encode())
    return sock


def read_answer(sock: socket.socket) -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def live_polls() -> int:
    gc.collect()
    return sum(isinstance(obj, Poll) for obj in gc.get_objects())


def test_parked_polls_whose_clients_go_away_leave_nothing_behind(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    registry = live_server.service.context.waiters
    users = [auth.login() for _ in range(6)]
    socks = [raw_poll(live_server, poll_target(live_api, users[i % 6], cursor="0")) for i in range(18)]
    assert wait_until(lambda: registry.count() == 18), registry.count()
    assert len(registry.timeouts) == 18 and registry.timeouts.armed()
    assert live_server.service.parking.detached == 18  # the drain waits for them
    assert live_polls() >= 18
    for sock in socks:
        sock.close()
    assert wait_until(lambda: registry.count() == 0), "a waiter leaked"
    assert registry.users() == set() and live_server.service.parking.detached == 0
    assert len(registry.timeouts) == 0 and not registry.timeouts.armed()
    assert wait_until(lambda: live_polls() == 0), "a parked poll object outlived its client"


def test_answers_carry_the_envelope_and_headers_and_keep_the_connection(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth
) -> None:
    app.config["CORS_ORIGINS"] = ["https://app.example"]
    alice, bob = auth.login(), auth.login()
    forged = SignedInUser(alice.user_id, bob.token, alice.phone)
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    headers = {"Origin": "https://app.example", "X-Request-Id": "lean-1"}
    for target, status, code in [
        (poll_target(live_api, forged, cursor="0"), 401, 504),  # another user's token
        (poll_target(live_api, alice, cursor="-1"), 400, 300),  # bad parameter
        (f"{PATH}?cursor=0", 400, 300),  # unsigned
        (poll_target(live_api, alice), 200, 0),  # no cursor: the current one at once
    ]:
        conn.request("GET", target, headers=headers)  # one kept-alive connection throughout
        response = conn.getresponse()
        body = response.read()
        assert_native_answer(response, body, status, code, "lean-1", "https://app.example")
        assert response.getheader("Connection") is None
    conn.close()


def test_http10_and_connection_close_are_answered_and_closed(
    live_server: LiveServer, live_api: ApiClient, auth
) -> None:
    alice = auth.login()
    for version, extra, connection_header in [
        ("HTTP/1.0", "", None),
        ("HTTP/1.1", "Connection: close\r\n", "close"),
    ]:
        sock = raw_poll(live_server, poll_target(live_api, alice), version, extra)
        response = read_answer(sock)
        assert response.status == 200 and response.getheader("Connection") == connection_header
        assert sock.recv(1) == b"", "the server kept a connection the client did not keep"
        sock.close()
    # An HTTP/1.0 client asking for keep-alive gets it.
    sock = raw_poll(live_server, poll_target(live_api, alice), "HTTP/1.0", "Connection: keep-alive\r\n")
    assert read_answer(sock).getheader("Connection") == "Keep-Alive"
    sock.sendall(f"GET {poll_target(live_api, alice)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    assert read_answer(sock).status == 200
    sock.close()


def test_draining_answers_parked_polls_at_once_and_closes_them(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 30
    alice = auth.login()
    cursor = live_api.get(PATH, {}, user=alice).data["cursor"]
    sock = raw_poll(live_server, poll_target(live_api, alice, cursor=str(cursor)))
    assert wait_until(lambda: live_server.service.context.waiters.count() == 1)
    loop = live_server._loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(live_server.service.shutdown(drain_secs=5), loop)
    response = read_answer(sock)
    assert response.status == 200 and response.getheader("Connection") == "close"
    assert sock.recv(1) == b""
    assert wait_until(lambda: live_server.service.open_connections() == 0)
    sock.close()


class Item:
    def __init__(self, name: str) -> None:
        self.name, self.due = name, 0


def test_timeout_wheel_expires_due_items_in_order_and_forgets_removed_ones() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        expired: list[str] = []
        wheel: TimeoutWheel[Item] = TimeoutWheel(lambda item: expired.append(item.name), tick_secs=0.05)
        now = loop.time()
        late, early, removed, far = Item("late"), Item("early"), Item("removed"), Item("far")
        wheel.add(late, now + 0.1)
        wheel.add(early, now - 1)
        wheel.add(removed, now)
        wheel.add(far, now + 3600)
        wheel.remove(removed)
        wheel.remove(removed)  # twice is harmless
        assert len(wheel) == 3 and removed.due == 0
        while len(expired) < 2:
            await asyncio.sleep(0.02)
        assert expired == ["early", "late"] and len(wheel) == 1 and wheel.armed()
        wheel.add(far, now + 7200)  # moved: still one entry
        assert len(wheel) == 1
        wheel.remove(far)
        assert len(wheel) == 0 and not wheel.armed() and wheel._buckets == {}
        assert [h for h in loop._scheduled if not h.cancelled()] == []  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_a_poll_that_finds_the_pools_shut_down_is_hung_up_for_nginx_to_resend(
    live_server: LiveServer, live_api: ApiClient, auth, monkeypatch
) -> None:
    from wsgi_app import errors
    from wsgi_app.errors import ApiError

    alice = auth.login()
    context = live_server.service.context

    async def stopping(*_args: object) -> object:
        raise ApiError(errors.SHUTTING_DOWN)

    monkeypatch.setattr(context, "run_blocking", stopping)
    parking = live_server.service.parking
    sock = raw_poll(live_server, poll_target(live_api, alice))  # no cursor: needs the pool
    assert sock.recv(1) == b"", "a poll the process can no longer serve must get no answer (nginx resends it)"
    sock.close()
    assert wait_until(lambda: parking.detached == 0)
    assert context.waiters.count() == 0


def test_polls_parked_in_a_burst_time_out_spread_and_a_steady_flow_stays_late() -> None:
    """10,000 polls parked within 10 s (a restart, a reconnect) must not come back as a wave,
    and polls arriving at the steady rate keep (almost) the whole timeout."""
    timeout, parked = 50.0, 10_000
    rng = random.Random(5)

    def per_second(deadlines: list[float]) -> Counter[int]:
        return Counter(int(deadline) for deadline in deadlines)

    async def scenario() -> None:
        burst: TimeoutWheel[Item] = TimeoutWheel(lambda item: None)
        now = asyncio.get_running_loop().time()
        deadlines = []
        for index in range(parked):
            at = now + 10.0 * index / parked
            deadline = at + burst.spread_timeout(at, timeout, rng)
            burst.add(Item(str(index)), deadline)
            deadlines.append(deadline - now)
        assert all(0.5 * timeout <= d - 10.0 * i / parked <= timeout for i, d in enumerate(deadlines))
        # a tenth of a timeout alone would put 10,000 into ~15 s (~700 a second); spread: <= 2x even
        even = parked / (timeout / 2 + 10.0)
        assert max(per_second(deadlines).values()) <= 2.2 * even
        assert len(burst) == parked

        steady: TimeoutWheel[Item] = TimeoutWheel(lambda item: None)
        rate = parked / timeout  # one re-park per poll per timeout
        chosen = []
        for index in range(3 * parked):  # three timeouts of a steady flow, expired as it goes
            at = now + index / rate
            for due in [due for due in steady._buckets if due * steady.tick_secs <= at]:
                for entry in list(steady._buckets[due]):
                    steady.remove(entry)
            timeout_secs = steady.spread_timeout(at, timeout, rng)
            steady.add(Item(f"s{index}"), at + timeout_secs)
            chosen.append(timeout_secs)
        assert sum(chosen) / len(chosen) >= 0.93 * timeout  # re-polls cost no more than they must

    asyncio.run(scenario())
