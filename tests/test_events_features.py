"""The features feeding the event stream: read receipts, recall, typing, visits, VIP, likes and
matches, presence and privacy (in-process; tests/test_events_processes.py runs them on servers)."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from tests.chat_support import png_bytes, send_text, sent_id
from tests.helpers import ApiClient, SignedInUser
from tests.social_helpers import make_vip, set_user_fields
from tests.test_vip import callback_params, order, post_callback, products  # noqa: F401 (fixture)
from wsgi_app.extensions import db
from wsgi_app.models.chat import Message
from wsgi_app.models.matching import Match
from wsgi_app.services.chat import media as chat_media
from wsgi_app.services.chat import messages as chat_messages
from wsgi_app.services.events import presence, stream
from wsgi_app.services.vip import expiry
from wsgi_app.timeutil import utcnow


def events_of(app: Flask, user: SignedInUser, kind: str | None = None) -> list[dict[str, Any]]:
    with app.app_context():
        events = stream.events_after(user.user_id, 0, 100)["events"]
    return [e for e in events if kind is None or e["type"] == kind]


def like(api: ApiClient, user: SignedInUser, peer: SignedInUser, kind: str = "like"):
    return api.post("/api/like/send", {"peerId": peer.user_id, "kind": kind}, user=user)


# -- read receipts --------------------------------------------------------------------


def test_reading_pushes_a_read_event_to_the_sender(app: Flask, api: ApiClient, alice, bob) -> None:
    first = sent_id(send_text(api, alice, bob, "one"))
    second = sent_id(send_text(api, alice, bob, "two"))
    assert api.post("/api/chat/read", {"peerId": alice.user_id}, user=bob).data["marked_count"] == 2
    (read,) = events_of(app, alice, "read")
    assert read["payload"]["peer_id"] == bob.user_id and read["payload"]["up_to_msg_id"] == second > first
    # Nothing new to mark: no second receipt.
    api.post("/api/chat/read", {"peerId": alice.user_id}, user=bob)
    assert len(events_of(app, alice, "read")) == 1


@pytest.mark.parametrize("who_turns_off", ["reader", "sender"])
def test_receipts_off_on_either_side_means_neither_sends_nor_sees(
    app: Flask, api: ApiClient, alice, bob, who_turns_off: str
) -> None:
    off = bob if who_turns_off == "reader" else alice
    assert api.post("/api/user/privacy", {"readReceipts": 0}, user=off).data["read_receipts"] is False
    msg_id = sent_id(send_text(api, alice, bob, "one"))
    api.post("/api/chat/read", {"peerId": alice.user_id}, user=bob)
    assert events_of(app, alice, "read") == []
    history = api.get("/api/chat/history", {"peerId": bob.user_id}, user=alice).data["list"]
    assert [(m["msg_id"], m["read_at"]) for m in history] == [(msg_id, None)]
    contact = api.get("/api/contacts/list", {}, user=alice).data["list"][0]
    assert contact["last_message"]["read_at"] is None
    api.post("/api/user/privacy", {"readReceipts": 1}, user=off)
    history = api.get("/api/chat/history", {"peerId": bob.user_id}, user=alice).data["list"]
    assert history[0]["read_at"] is not None  # on again: seen


# -- recall ---------------------------------------------------------------------------


def test_recall_removes_the_message_everywhere(app: Flask, api: ApiClient, alice, bob) -> None:
    kept = sent_id(send_text(api, alice, bob, "kept"))
    reply = api.post(
        "/api/chat/send",
        {"peerId": bob.user_id, "clientMsgId": "img1", "kind": "image"},
        user=alice,
        files={"file": (__import__("io").BytesIO(png_bytes()), "a.png")},
    )
    image_id = reply.data["message"]["msg_id"]
    with app.app_context():
        stored = db.session.get(Message, image_id)
        assert stored is not None and stored.media_filename is not None
        path = chat_media.media_path(stored.media_filename)
    assert os.path.exists(path)
    assert api.post("/api/chat/recall", {"msgId": image_id}, user=alice).data == {
        "msg_id": image_id,
        "peer_id": bob.user_id,
    }
    assert not os.path.exists(path)
    for viewer, peer in ((alice, bob), (bob, alice)):
        history = api.get("/api/chat/history", {"peerId": peer.user_id}, user=viewer).data["list"]
        assert [m["msg_id"] for m in history] == [kept]
        contact = api.get("/api/contacts/list", {}, user=viewer).data["list"][0]
        assert contact["last_message"]["msg_id"] == kept
    assert api.get("/api/contacts/list", {}, user=bob).data["list"][0]["unread_count"] == 1
    with app.app_context():  # what GET /api/chat/poll answers
        assert [m["msg_id"] for m in chat_messages.messages_after(bob.user_id, 0, 50)["list"]] == [kept]
    # Bob's stream: the kept message, the recall (the image's message event is gone).
    assert [(e["type"], e["payload"]["msg_id"]) for e in events_of(app, bob)] == [
        ("message", kept),
        ("recall", image_id),
    ]
    assert [e["payload"] for e in events_of(app, alice, "recall")] == [
        {"msg_id": image_id, "peer_id": bob.user_id}
    ]


def test_recall_only_by_the_sender_and_only_within_two_minutes(
    app: Flask, api: ApiClient, alice, bob
) -> None:
    msg_id = sent_id(send_text(api, alice, bob, "hi"))
    assert api.post("/api/chat/recall", {"msgId": msg_id}, user=bob).code == 511
    with app.app_context():
        db.session.execute(
            db.update(Message)
            .where(Message.id == msg_id)
            .values(created_at=utcnow() - timedelta(seconds=121))
        )
        db.session.commit()
    reply = api.post("/api/chat/recall", {"msgId": msg_id}, user=alice)
    assert (reply.status, reply.code) == (409, 534)
    assert events_of(app, bob, "recall") == []


# -- typing ---------------------------------------------------------------------------


def test_typing_is_rate_limited_expires_and_only_between_people_who_may_chat(
    app: Flask, api: ApiClient, alice, bob, carol
) -> None:
    app.config["TYPING_EXPIRES_SECS"] = 1
    reply = api.post("/api/chat/typing", {"peerId": bob.user_id, "state": "start"}, user=alice)
    assert reply.data == {"peer_id": bob.user_id, "state": "start", "expires_in": 1}
    again = api.post("/api/chat/typing", {"peerId": bob.user_id, "state": "start"}, user=alice)
    assert again.code == 429 and int(again.headers["Retry-After"]) >= 1
    # Another conversation has its own limit.
    assert api.post("/api/chat/typing", {"peerId": carol.user_id, "state": "start"}, user=alice).code == 0
    assert api.get("/api/chat/typing", {"peerId": alice.user_id}, user=bob).data["typing"] is True
    time.sleep(2.1)
    assert api.get("/api/chat/typing", {"peerId": alice.user_id}, user=bob).data["typing"] is False
    assert events_of(app, bob) == []  # never stored
    api.post("/api/block/add", {"peerId": alice.user_id}, user=carol)
    assert api.post("/api/chat/typing", {"peerId": carol.user_id, "state": "stop"}, user=alice).code == 512


# -- visits and VIP -------------------------------------------------------------------


def test_a_visit_tells_a_vip_who_and_others_a_count(app: Flask, api: ApiClient, alice, bob, carol) -> None:
    api.get("/api/user/show", {"peerId": bob.user_id}, user=alice)
    api.get("/api/user/show", {"peerId": bob.user_id}, user=alice)  # still new: no second event
    (visit,) = events_of(app, bob, "visit")
    assert visit["payload"] == {"new_visitors": 1}
    make_vip(app, carol.user_id)
    api.get("/api/user/show", {"peerId": carol.user_id}, user=alice)
    (visit,) = events_of(app, carol, "visit")
    assert visit["payload"]["new_visitors"] == 1 and visit["payload"]["visitor"]["user_id"] == alice.user_id


def test_vip_events_on_purchase_and_on_expiry(app: Flask, api: ApiClient, client, alice, products) -> None:  # noqa: F811
    placed = order(api, alice, products["vip_monthly"])
    assert post_callback(client, callback_params(app, placed["order_no"])).status_code == 200
    (bought,) = events_of(app, alice, "vip")
    assert bought["payload"]["is_vip"] is True and bought["payload"]["reason"] == "purchase"
    set_user_fields(app, alice.user_id, vip_expires_at=utcnow() - timedelta(minutes=1))
    with app.app_context():
        assert expiry.announce_expired() == 1
        assert expiry.announce_expired() == 0  # once
    expired = events_of(app, alice, "vip")[-1]
    assert expired["payload"] == {"is_vip": False, "vip_expires_at": None, "reason": "expired"}


# -- likes and matches ----------------------------------------------------------------


def test_a_like_is_invisible_unless_mutual_then_both_match(app: Flask, api: ApiClient, alice, bob) -> None:
    assert like(api, alice, bob).data["matched"] is False
    assert events_of(app, bob) == []  # bob is not VIP: he learns nothing
    assert api.get("/api/like/received", {}, user=bob).code == 513
    assert api.get("/api/match/list", {}, user=bob).data["total"] == 0
    assert like(api, bob, alice).data["matched"] is True
    for me, other in ((alice, bob), (bob, alice)):
        (match,) = events_of(app, me, "match")
        assert match["payload"]["peer"]["user_id"] == other.user_id
        listed = api.get("/api/match/list", {}, user=me).data["list"]
        assert [m["peer"]["user_id"] for m in listed] == [other.user_id]
    assert like(api, bob, alice).data["matched"] is True  # again: no second match
    assert len(events_of(app, alice, "match")) == 1


def test_a_vip_sees_who_liked_them(app: Flask, api: ApiClient, alice, bob, carol) -> None:
    make_vip(app, bob.user_id)
    like(api, alice, bob, "super")
    like(api, carol, bob, "pass")
    (liked,) = events_of(app, bob, "like")
    assert liked["payload"]["liker"]["user_id"] == alice.user_id and liked["payload"]["kind"] == "super"
    received = api.get("/api/like/received", {}, user=bob).data
    assert [(r["liker"]["user_id"], r["kind"]) for r in received["list"]] == [(alice.user_id, "super")]


def test_unmatch_removes_the_match_for_both_silently(app: Flask, api: ApiClient, alice, bob) -> None:
    like(api, alice, bob)
    like(api, bob, alice)
    assert api.post("/api/match/remove", {"peerId": bob.user_id}, user=alice).data["unmatched"] is True
    for me, other in ((alice, bob), (bob, alice)):
        assert api.get("/api/match/list", {}, user=me).data["total"] == 0
        assert [e["payload"] for e in events_of(app, me, "unmatch")] == [{"peer_id": other.user_id}]
    assert like(api, bob, alice).data["matched"] is False  # alice's like became a pass


def test_blocking_undoes_a_match(app: Flask, api: ApiClient, alice, bob) -> None:
    like(api, alice, bob)
    like(api, bob, alice)
    api.post("/api/block/add", {"peerId": alice.user_id}, user=bob)
    with app.app_context():
        assert db.session.execute(db.select(Match)).first() is None
    assert [e["payload"] for e in events_of(app, alice, "unmatch")] == [{"peer_id": bob.user_id}]
    assert like(api, alice, bob).code == 512


def test_daily_limits_answer_their_codes(app: Flask, api: ApiClient, auth, alice) -> None:
    app.config["LIKES_PER_DAY"] = 2
    people = [auth.login() for _ in range(4)]
    assert like(api, alice, people[0], "super").data["super_likes_left"] == 0
    second = like(api, alice, people[1], "super")
    assert (second.status, second.code) == (429, 532)
    assert like(api, alice, people[1]).data["likes_left"] == 0
    third = like(api, alice, people[2])
    assert (third.status, third.code) == (429, 531)
    assert like(api, alice, people[0]).code == 0  # changing a decision of today costs nothing
    assert like(api, alice, people[2], "pass").code == 0  # a pass is always allowed
    make_vip(app, alice.user_id)
    assert like(api, alice, people[3]).code == 0


# -- presence and privacy -------------------------------------------------------------


def test_presence_online_then_minutes_ago_and_hidden_both_ways(
    app: Flask, api: ApiClient, alice, bob
) -> None:
    with app.app_context():
        presence.record_active(bob.user_id)
    ids = {"userIds": f"{bob.user_id},{alice.user_id},999999"}
    listed = api.get("/api/user/presence", ids, user=alice).data["list"]
    assert [item["user_id"] for item in listed] == [bob.user_id, alice.user_id]
    assert listed[0]["presence"]["online"] is True
    set_user_fields(app, bob.user_id, last_active_at=utcnow() - timedelta(minutes=7))
    status = api.get("/api/user/presence", ids, user=alice).data["list"][0]["presence"]
    assert status["online"] is False and status["active_minutes_ago"] == 7
    api.post("/api/user/privacy", {"presenceHidden": 1}, user=bob)
    assert api.get("/api/user/presence", ids, user=alice).data["list"][0]["presence"] is None
    api.post("/api/user/privacy", {"presenceHidden": 0}, user=bob)
    api.post("/api/user/privacy", {"presenceHidden": 1}, user=alice)  # hiding: you see no one's either
    assert api.get("/api/user/presence", ids, user=alice).data["list"][0]["presence"] is None


def test_presence_goes_only_to_matches_and_partners(
    app: Flask, api: ApiClient, alice, bob, carol, auth
) -> None:
    dave = auth.login()
    send_text(api, bob, alice, "hi")
    like(api, carol, alice)
    like(api, alice, carol)
    with app.app_context():
        assert sorted(presence.partners_of(alice.user_id)) == sorted([bob.user_id, carol.user_id])
        assert dave.user_id not in presence.partners_of(alice.user_id)
    api.post("/api/user/privacy", {"presenceHidden": 1}, user=bob)
    with app.app_context():
        assert presence.partners_of(alice.user_id) == [carol.user_id]
