"""The event stream on real server processes sharing the database and Redis.

Two devices of one person poll with their own cursors; the process holding
their polls is SIGKILLed; every durable event type is produced; both devices
resume on another process and get every event exactly once. Also: a Redis
outage under a parked event poll loses nothing, and old chat/poll clients
are answered as before beside event polls.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask

from tests.chat_support import send_text, sent_id
from tests.conftest import ServerProcess
from tests.helpers import ApiClient, HttpTransport, Reply, SignedInUser
from tests.integration.services import RedisServer
from tests.test_chat_processes import require_real_redis, wait_for_parked_polls
from tests.test_vip import callback_params, order, post_callback, products  # noqa: F401 (fixture)
from wsgi_app import transactions
from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.events import producer

DURABLE = {"message", "read", "recall", "visit", "vip", "like", "match", "unmatch"}


def events_poll(api: ApiClient, user: SignedInUser, cursor: int) -> Reply:
    return api.get("/api/events/poll", {"cursor": cursor}, user=user)


class Device:
    """One device of a person: its own cursor and every durable event it was answered."""

    def __init__(self, user: SignedInUser, cursor: int) -> None:
        self.user = user
        self.cursor = cursor
        self.durable: list[dict[str, Any]] = []

    def poll(self, api: ApiClient) -> Reply:
        reply = events_poll(api, self.user, self.cursor)
        assert reply.status == 200, reply.body
        self.durable += [e for e in reply.data["events"] if e["id"] is not None]
        self.cursor = reply.data["cursor"]
        return reply

    def poll_until_quiet(self, api: ApiClient) -> None:
        """Poll (short timeouts) until an answer brings nothing durable."""
        while True:
            before = len(self.durable)
            reply = self.poll(api)
            if len(self.durable) == before and not reply.data["has_more"]:
                return


def test_every_durable_event_reaches_two_devices_exactly_once_across_a_sigkill(
    spawn_server,
    base_config: dict[str, Any],
    app: Flask,
    api: ApiClient,
    client,
    creds: AppCredentials,
    auth,
    products,  # noqa: F811
) -> None:
    require_real_redis(base_config)
    doomed = spawn_server(LONGPOLL_TIMEOUT_SECS="30")
    survivor = spawn_server(LONGPOLL_TIMEOUT_SECS="2")
    on_doomed = ApiClient(HttpTransport(doomed.base_url), creds)
    on_survivor = ApiClient(HttpTransport(survivor.base_url), creds)
    alice, bob, carol = auth.login(), auth.login(), auth.login()
    start = on_survivor.get("/api/events/poll", {}, user=alice).data["cursor"]
    phone, tablet = Device(alice, start), Device(alice, start)

    # Phase 1: both devices parked on the doomed process; a message wakes both.
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = [pool.submit(device.poll, on_doomed) for device in (phone, tablet)]
        wait_for_parked_polls(doomed.base_url, 2)
        first = sent_id(send_text(on_survivor, bob, alice, "before the kill"))
        for future in waiting:
            future.result(15)
    assert (
        [e["payload"]["msg_id"] for e in phone.durable]
        == [first]
        == [e["payload"]["msg_id"] for e in tablet.durable]
    )

    # Phase 2: parked again on the doomed process, which is SIGKILLed while they wait.
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = [pool.submit(device.poll, on_doomed) for device in (phone, tablet)]
        wait_for_parked_polls(doomed.base_url, 2)
        doomed.proc.kill()
        doomed.proc.wait(10)
        for future in waiting:
            assert future.exception(15) is not None  # the connection died unanswered

    # Phase 3: every durable event type while no device is connected.
    mine = sent_id(send_text(on_survivor, alice, bob, "read me"))
    assert api.post("/api/chat/read", {"peerId": alice.user_id}, user=bob).code == 0  # read
    taken_back = sent_id(send_text(on_survivor, bob, alice, "oops"))
    assert api.post("/api/chat/recall", {"msgId": taken_back}, user=bob).code == 0  # recall
    assert on_survivor.get("/api/user/show", {"peerId": alice.user_id}, user=bob).code == 0  # visit
    placed = order(api, alice, products["vip_monthly"])
    assert post_callback(client, callback_params(app, placed["order_no"])).status_code == 200  # vip
    assert api.post("/api/like/send", {"peerId": alice.user_id}, user=carol).data["matched"] is False  # like
    api.post("/api/like/send", {"peerId": alice.user_id}, user=bob)
    assert api.post("/api/like/send", {"peerId": bob.user_id}, user=alice).data["matched"] is True  # match
    assert api.post("/api/match/remove", {"peerId": alice.user_id}, user=bob).data["unmatched"]  # unmatch

    # Phase 4: both devices resume on the surviving process from their own cursors.
    for device in (phone, tablet):
        device.poll_until_quiet(on_survivor)
    for device in (phone, tablet):
        ids = [e["id"] for e in device.durable]
        assert ids == sorted(set(ids)), "an event twice or out of order"
        assert {e["type"] for e in device.durable} == DURABLE
    assert [e["id"] for e in phone.durable] == [e["id"] for e in tablet.durable]
    assert phone.cursor == tablet.cursor
    messages = [e["payload"]["msg_id"] for e in phone.durable if e["type"] == "message"]
    assert messages == [first]  # the recalled one never shows; alice's own message is not to her
    read = next(e for e in phone.durable if e["type"] == "read")
    assert read["payload"]["up_to_msg_id"] == mine


def test_a_redis_outage_under_a_parked_event_poll_loses_nothing(
    spawn_server, app: Flask, creds: AppCredentials, auth, own_redis: RedisServer
) -> None:
    server: ServerProcess = spawn_server(LONGPOLL_TIMEOUT_SECS="30", REDIS_URL=own_redis.url)
    on_server = ApiClient(HttpTransport(server.base_url), creds)
    alice = auth.login()
    cursor = on_server.get("/api/events/poll", {}, user=alice).data["cursor"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(events_poll, on_server, alice, cursor)
        wait_for_parked_polls(server.base_url, 1)
        own_redis.stop()
        with app.app_context():  # stored; its wake-up never reaches this server's Redis
            transactions.write(lambda: producer.append(alice.user_id, "vip", {"is_vip": True}))
        time.sleep(0.5)
        own_redis.start()
        started = time.monotonic()
        reply = waiting.result(25)
    assert time.monotonic() - started < 15  # the listener's catch-up wake, not the 30 s timeout
    assert [(e["id"], e["type"]) for e in reply.data["events"]] == [(cursor + 1, "vip")]


def test_old_chat_poll_clients_are_answered_as_before_beside_event_polls(
    spawn_server, base_config: dict[str, Any], creds: AppCredentials, auth
) -> None:
    require_real_redis(base_config)
    server = spawn_server(LONGPOLL_TIMEOUT_SECS="20")
    on_server = ApiClient(HttpTransport(server.base_url), creds)
    alice, bob = auth.login(), auth.login()
    chat_cursor = on_server.get("/api/chat/poll", {}, user=alice).data["cursor"]
    event_cursor = on_server.get("/api/events/poll", {}, user=alice).data["cursor"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        old = pool.submit(on_server.get, "/api/chat/poll", {"cursor": chat_cursor}, user=alice)
        new = pool.submit(events_poll, on_server, alice, event_cursor)
        wait_for_parked_polls(server.base_url, 2)
        msg_id = sent_id(send_text(on_server, bob, alice, "to both kinds"))
        old_reply, new_reply = old.result(15), new.result(15)
    assert set(old_reply.data) == {"list", "cursor", "has_more"}
    assert [m["msg_id"] for m in old_reply.data["list"]] == [msg_id] and old_reply.data["cursor"] == msg_id
    assert [e["payload"]["msg_id"] for e in new_reply.data["events"] if e["type"] == "message"] == [msg_id]


def test_sigterm_answers_a_parked_event_poll_at_once_with_its_cursor(
    spawn_server, creds: AppCredentials, auth
) -> None:
    """A rolling restart: the stopping process answers (same cursor), the client re-polls elsewhere."""
    server = spawn_server(LONGPOLL_TIMEOUT_SECS="60")
    on_server = ApiClient(HttpTransport(server.base_url), creds)
    alice = auth.login()
    cursor = on_server.get("/api/events/poll", {}, user=alice).data["cursor"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(events_poll, on_server, alice, cursor)
        wait_for_parked_polls(server.base_url, 1)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        reply = waiting.result(10)
    assert time.monotonic() - started < 5
    assert reply.status == 200 and reply.data == {"events": [], "cursor": cursor, "has_more": False}
    assert server.proc.wait(10) == 0
