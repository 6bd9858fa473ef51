"""``GET /api/events/poll`` on a live Tornado server: answers, waits, wakes, ephemeral pushes, resync."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient, Reply, SignedInUser, wait_until
from wsgi_app import transactions
from wsgi_app.services.events import producer

PATH = "/api/events/poll"


def events_poll(api: ApiClient, user: SignedInUser, cursor: int | None, **extra) -> Reply:
    return api.get(PATH, {**({} if cursor is None else {"cursor": cursor}), **extra}, user=user)


def durable_events(api: ApiClient, user: SignedInUser, cursor: int, polls: int = 5) -> list[dict]:
    """The durable events of the first answer that has any (ephemeral ones are skipped)."""
    for _ in range(polls):
        reply = events_poll(api, user, cursor)
        assert reply.code == 0, reply.body
        durable = [e for e in reply.data["events"] if e["id"] is not None]
        if durable:
            return durable
        cursor = reply.data["cursor"]
    return []


def test_no_cursor_answers_the_current_cursor_at_once(live_api: ApiClient, alice, bob) -> None:
    send_text(live_api, bob, alice, "before")
    reply = events_poll(live_api, alice, None)
    assert reply.code == 0 and reply.data == {"events": [], "cursor": 1, "has_more": False}


def test_a_waiting_poll_is_woken_by_a_message_and_by_another_event(
    app: Flask, live_server, live_api: ApiClient, alice, bob
) -> None:
    cursor = events_poll(live_api, alice, None).data["cursor"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(durable_events, live_api, alice, cursor)
        assert wait_until(lambda: live_server.service.context.waiters.count() >= 1)
        msg_id = sent_id(send_text(live_api, bob, alice, "hello"))
        events = waiting.result(10)
    assert [(e["type"], e["payload"]["msg_id"]) for e in events] == [("message", msg_id)]
    cursor = events[-1]["id"]
    time.sleep(0.5)  # bob's first send made him "online": that presence event may come first
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(durable_events, live_api, alice, cursor)
        assert wait_until(lambda: live_server.service.context.waiters.count() >= 1)
        with app.app_context():
            transactions.write(lambda: producer.append(alice.user_id, "vip", {"is_vip": True}))
        events = waiting.result(10)
    assert [(e["id"], e["type"]) for e in events] == [(cursor + 1, "vip")]


def test_an_ephemeral_event_reaches_a_waiting_poll_and_keeps_the_cursor(
    app: Flask, live_server, live_api: ApiClient, alice
) -> None:
    cursor = events_poll(live_api, alice, None).data["cursor"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(events_poll, live_api, alice, cursor)
        assert wait_until(lambda: live_server.service.context.waiters.count() >= 1)
        assert wait_until(lambda: live_server.service.context.listener.subscribed.is_set())
        event = producer.ephemeral_event("typing", {"peer_id": 9, "state": "start", "expires_in": 15}, "t")
        with app.app_context():
            producer.publish_ephemeral([alice.user_id], event)
        reply = waiting.result(10)
    assert reply.data == {"events": [event], "cursor": cursor, "has_more": False}


def test_a_poll_times_out_with_the_same_cursor(app: Flask, live_server, live_api: ApiClient, alice) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 1
    started = time.monotonic()
    reply = events_poll(live_api, alice, 0)
    assert reply.data == {"events": [], "cursor": 0, "has_more": False}
    assert 0.5 < time.monotonic() - started < 5


def test_a_cursor_ahead_of_the_stream_gets_resync(live_api: ApiClient, alice) -> None:
    reply = events_poll(live_api, alice, 5)
    assert reply.status == 410 and reply.code == 533


def test_limit_pages_the_backlog_in_order(live_api: ApiClient, alice, bob) -> None:
    ids = [sent_id(send_text(live_api, bob, alice, f"m{n}")) for n in range(5)]
    first = events_poll(live_api, alice, 0, limit=3).data
    assert first["has_more"] and first["cursor"] == 3
    second = events_poll(live_api, alice, first["cursor"], limit=3).data
    assert not second["has_more"]
    assert [e["payload"]["msg_id"] for e in first["events"] + second["events"]] == ids


def test_a_poll_marks_its_person_active(app: Flask, live_api: ApiClient, alice) -> None:
    from wsgi_app.extensions import db
    from wsgi_app.models.user import User

    def last_active() -> object:
        with app.app_context():
            return db.session.execute(db.select(User.last_active_at).where(User.id == alice.user_id)).scalar()

    assert last_active() is None
    events_poll(live_api, alice, None)
    assert wait_until(lambda: last_active() is not None)
