"""Chat through Flask: send (idempotent, blocks, media), history, contacts, mark read."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from flask import Flask

from tests.chat_support import AMR_CLIP, WAV_CLIP, block, png_bytes, send_text, sent_id
from tests.helpers import ApiClient, SignedInUser
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.chat import Contact, Message
from wsgi_app.services.chat.events import user_id_from_payload, wake_channel


def history(api: ApiClient, user: SignedInUser, peer: SignedInUser, **params: Any) -> Any:
    reply = api.get("/api/chat/history", {"peerId": peer.user_id, **params}, user=user)
    assert reply.status == 200, reply.body
    return reply.data


def contacts(api: ApiClient, user: SignedInUser, **params: Any) -> Any:
    reply = api.get("/api/contacts/list", params, user=user)
    assert reply.status == 200, reply.body
    return reply.data


def message_count(app: Flask) -> int:
    with app.app_context():
        return db.session.query(Message).count()


def test_text_message_is_stored_and_shown_to_both(api: ApiClient, alice, bob) -> None:
    reply = send_text(api, alice, bob, "hello bob 👋", "m-1")
    assert reply.status == 200, reply.body
    message = reply.data["message"]
    assert reply.data["duplicate"] is False
    assert message["sender_id"] == alice.user_id and message["recipient_id"] == bob.user_id
    assert (message["kind"], message["content"], message["client_msg_id"]) == ("text", "hello bob 👋", "m-1")
    assert message["media_url"] is None and message["read_at"] is None
    assert [m["msg_id"] for m in history(api, bob, alice)["list"]] == [message["msg_id"]]
    assert [m["msg_id"] for m in history(api, alice, bob)["list"]] == [message["msg_id"]]


def test_retried_send_with_same_client_id_is_stored_once(api: ApiClient, app: Flask, alice, bob) -> None:
    first = send_text(api, alice, bob, "once", "retry-1")
    again = send_text(api, alice, bob, "once", "retry-1")
    assert again.status == 200 and again.data["duplicate"] is True
    assert again.data["message"]["msg_id"] == first.data["message"]["msg_id"]
    assert message_count(app) == 1
    assert contacts(api, bob)["list"][0]["unread_count"] == 1  # counted once
    # The same client id from another sender is a different message.
    assert send_text(api, bob, alice, "mine", "retry-1").data["duplicate"] is False
    assert message_count(app) == 2


def test_client_id_reused_for_another_recipient_is_a_conflict(api: ApiClient, alice, bob, carol) -> None:
    send_text(api, alice, bob, "to bob", "same-id")
    reply = send_text(api, alice, carol, "to carol", "same-id")
    assert (reply.status, reply.code) == (409, 409)


@pytest.mark.parametrize("blocker_is_sender", [True, False])
def test_send_is_refused_when_either_side_blocked(
    api: ApiClient, app: Flask, alice, bob, blocker_is_sender
) -> None:
    if blocker_is_sender:
        block(app, alice, bob)
    else:
        block(app, bob, alice)
    for sender, peer in ((alice, bob), (bob, alice)):
        reply = send_text(api, sender, peer, "hi")
        assert (reply.status, reply.code) == (403, 512), reply.body
    assert message_count(app) == 0


def test_blocked_conversation_disappears_from_contacts_and_history(
    api: ApiClient, app: Flask, alice, bob, carol
) -> None:
    send_text(api, bob, alice, "before the block")
    send_text(api, carol, alice, "hi")
    block(app, alice, bob)
    peers = [c["peer"]["user_id"] for c in contacts(api, alice)["list"]]
    assert peers == [carol.user_id]
    assert [c["peer"]["user_id"] for c in contacts(api, bob)["list"]] == []
    reply = api.get("/api/chat/history", {"peerId": alice.user_id}, user=bob)
    assert (reply.status, reply.code) == (403, 512)


@pytest.mark.parametrize(
    "params, code",
    [
        ({"content": "x", "peerId": 999999}, 501),
        ({"content": ""}, 300),
        ({"content": "   "}, 300),
        ({"content": "x", "kind": "video"}, 300),
        ({"content": "x", "clientMsgId": "has space"}, 300),
        ({"content": "x", "clientMsgId": "a" * 65}, 300),
        ({"content": "x" * 2001}, 300),
        ({"content": "x", "peerId": "abc"}, 300),
        ({"kind": "voice"}, 300),
    ],
)
def test_bad_sends_are_refused_with_clear_codes(api: ApiClient, app: Flask, alice, bob, params, code) -> None:
    full = {"peerId": bob.user_id, "clientMsgId": "bad-1", "kind": "text", **params}
    reply = api.post("/api/chat/send", full, user=alice)
    assert reply.code == code, reply.body
    assert reply.status in (400, 404)
    assert message_count(app) == 0


def test_messaging_yourself_is_refused(api: ApiClient, alice) -> None:
    reply = send_text(api, alice, alice, "me")
    assert (reply.status, reply.code) == (400, 300)


def test_another_users_token_is_refused(api: ApiClient, alice, bob) -> None:
    forged = SignedInUser(alice.user_id, bob.token, alice.phone)
    for method, path, params in (
        ("POST", "/api/chat/send", {"peerId": bob.user_id, "clientMsgId": "x1", "content": "hi"}),
        ("GET", "/api/chat/history", {"peerId": bob.user_id}),
        ("POST", "/api/chat/read", {"peerId": bob.user_id}),
        ("GET", "/api/contacts/list", {}),
    ):
        reply = api.call(method, path, params, user=forged)
        assert (reply.status, reply.code) == (401, 504), (path, reply.body)


def test_history_pages_newest_first_by_cursor(api: ApiClient, alice, bob, carol) -> None:
    ids = [sent_id(send_text(api, *((alice, bob) if i % 2 else (bob, alice)), f"m{i}")) for i in range(7)]
    send_text(api, carol, alice, "another conversation")
    seen: list[int] = []
    before = None
    for _ in range(10):
        params = {"pageCount": 3, **({"beforeId": before} if before else {})}
        page = history(api, alice, bob, **params)
        seen.extend(m["msg_id"] for m in page["list"])
        assert len(page["list"]) <= 3
        if not page["has_more"]:
            assert page["next_before_id"] is None
            break
        before = page["next_before_id"]
    assert seen == sorted(ids, reverse=True)
    too_big = api.get("/api/chat/history", {"peerId": bob.user_id, "pageCount": 51}, user=alice)
    assert (too_big.status, too_big.code) == (400, 300)


def test_history_only_ever_shows_your_own_conversation(api: ApiClient, alice, bob, carol) -> None:
    send_text(api, alice, bob, "private")
    assert history(api, carol, bob)["list"] == []
    assert history(api, carol, alice)["list"] == []


def test_contacts_newest_first_with_last_message_and_unread(api: ApiClient, alice, bob, carol) -> None:
    send_text(api, bob, alice, "b1")
    send_text(api, bob, alice, "b2")
    send_text(api, carol, alice, "c1")
    listing = contacts(api, alice)
    assert [c["peer"]["user_id"] for c in listing["list"]] == [carol.user_id, bob.user_id]
    assert [c["unread_count"] for c in listing["list"]] == [1, 2]
    assert [c["last_message"]["content"] for c in listing["list"]] == ["c1", "b2"]
    assert listing["total"] == 2 and listing["has_next"] is False
    assert set(listing["list"][0]["peer"]) == {"user_id", "nickname", "avatar", "gender"}
    send_text(api, alice, bob, "a reply")
    listing = contacts(api, alice)
    assert [c["peer"]["user_id"] for c in listing["list"]] == [bob.user_id, carol.user_id]
    assert listing["list"][0]["last_message"]["content"] == "a reply"
    assert listing["list"][0]["unread_count"] == 2  # my own message does not count
    bob_view = contacts(api, bob)["list"][0]
    assert (bob_view["peer"]["user_id"], bob_view["unread_count"]) == (alice.user_id, 1)
    page = contacts(api, alice, page=1, pageCount=1)
    assert (page["total"], len(page["list"]), page["has_next"]) == (2, 1, True)


def test_mark_read_clears_unread_and_gives_the_sender_a_receipt(api: ApiClient, alice, bob) -> None:
    ids = [sent_id(send_text(api, bob, alice, f"b{i}")) for i in range(3)]
    partial = api.post("/api/chat/read", {"peerId": bob.user_id, "upToId": ids[1]}, user=alice)
    assert partial.status == 200, partial.body
    assert (partial.data["marked_count"], partial.data["unread_count"]) == (2, 1)
    assert contacts(api, alice)["list"][0]["unread_count"] == 1
    receipts = {m["msg_id"]: m["read_at"] for m in history(api, bob, alice)["list"]}
    assert receipts[ids[0]] and receipts[ids[1]] and receipts[ids[2]] is None
    rest = api.post("/api/chat/read", {"peerId": bob.user_id}, user=alice)
    assert (rest.data["marked_count"], rest.data["unread_count"]) == (1, 0)
    assert contacts(api, alice)["list"][0]["unread_count"] == 0
    # Bob cannot mark Alice's received messages read: only messages to the caller are touched.
    send_text(api, bob, alice, "new")
    assert api.post("/api/chat/read", {"peerId": alice.user_id}, user=bob).data["marked_count"] == 0
    assert contacts(api, alice)["list"][0]["unread_count"] == 1


def _send_file(api: ApiClient, sender, peer, kind: str, content: bytes, name: str, cid: str = "f1"):
    params = {"peerId": peer.user_id, "clientMsgId": cid, "kind": kind}
    return api.post("/api/chat/send", params, user=sender, files={"file": (io.BytesIO(content), name)})


def _uploads(app: Flask) -> set[str]:
    folder = app.config["CHAT_MEDIA_FOLDER"]
    return (
        {name for name in os.listdir(folder) if name.startswith("chat-")} if os.path.isdir(folder) else set()
    )


def test_image_and_voice_messages_store_checked_files(api: ApiClient, app: Flask, alice, bob) -> None:
    before = _uploads(app)
    image = _send_file(api, alice, bob, "image", png_bytes(), "x.jpg", "img-1")
    assert image.status == 200, image.body
    assert image.data["message"]["media_url"].endswith(".png")  # from the content, not the name
    voice = _send_file(api, alice, bob, "voice", AMR_CLIP, "clip.bin", "voice-1")
    assert voice.status == 200, voice.body
    assert voice.data["message"]["media_url"].endswith(".amr")
    wav = _send_file(api, alice, bob, "voice", WAV_CLIP, "clip.ogg", "voice-2")
    assert wav.data["message"]["media_url"].endswith(".wav")
    assert len(_uploads(app) - before) == 3
    # A retried upload is stored once, file included.
    again = _send_file(api, alice, bob, "image", png_bytes(), "x.jpg", "img-1")
    assert again.data["duplicate"] is True and len(_uploads(app) - before) == 3
    path, _, name = image.data["message"]["media_url"].partition("?name=")
    signed = api.signed("GET", path, {**bob.params(), "name": name})
    served = api.flask_client.get(path, query_string=signed)
    assert served.status_code == 200 and served.data == png_bytes()


@pytest.mark.parametrize(
    "kind, content, status, code",
    [
        ("image", b"not an image at all", 415, 514),
        ("image", png_bytes()[:40], 415, 514),
        ("voice", b"just some text pretending", 415, 415),
        ("voice", png_bytes(), 415, 415),
        ("voice", b"", 400, 300),
    ],
)
def test_bad_media_is_refused_and_nothing_stored(
    api: ApiClient, app: Flask, alice, bob, kind, content, status, code
) -> None:
    before = _uploads(app)
    reply = _send_file(api, alice, bob, kind, content, "f.bin")
    assert (reply.status, reply.code) == (status, code), reply.body
    assert message_count(app) == 0 and _uploads(app) == before


def test_media_over_the_size_limit_is_413(api: ApiClient, app: Flask, alice, bob) -> None:
    app.config["CHAT_MEDIA_MAX_BYTES"] = 20
    reply = _send_file(api, alice, bob, "voice", AMR_CLIP, "a.amr")
    assert (reply.status, reply.code) == (413, 413)


def test_text_with_a_file_is_refused(api: ApiClient, alice, bob) -> None:
    params = {"peerId": bob.user_id, "clientMsgId": "t1", "kind": "text", "content": "hi"}
    reply = api.post("/api/chat/send", params, user=alice, files={"file": (io.BytesIO(AMR_CLIP), "a.amr")})
    assert (reply.status, reply.code) == (400, 300)


def test_sending_is_rate_limited(api: ApiClient, app: Flask, alice, bob) -> None:
    app.config["CHAT_SEND_LIMITS"] = [(3, 60)]
    assert all(send_text(api, alice, bob, f"m{i}").status == 200 for i in range(3))
    reply = send_text(api, alice, bob, "one too many")
    assert (reply.status, reply.code) == (429, 429)
    assert int(reply.headers["Retry-After"]) > 0


def test_a_send_is_announced_after_it_is_stored(api: ApiClient, app: Flask, alice, bob) -> None:
    with app.app_context():
        client = redis_client()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(wake_channel(client))
        pubsub.get_message(timeout=1)
    msg_id = sent_id(send_text(api, alice, bob, "wake up"))
    announced = None
    for _ in range(20):
        announced = pubsub.get_message(timeout=0.1)
        if announced:
            break
    pubsub.close()
    assert announced is not None
    assert user_id_from_payload(announced["data"]) == bob.user_id
    assert f'"msg_id":{msg_id}' in announced["data"]


def test_contact_rows_track_last_message_per_side(api: ApiClient, app: Flask, alice, bob) -> None:
    first = sent_id(send_text(api, alice, bob, "1"))
    second = sent_id(send_text(api, bob, alice, "2"))
    with app.app_context():
        rows = {(c.user_id, c.peer_id): c for c in db.session.query(Contact)}
        assert rows[(alice.user_id, bob.user_id)].last_message_id == second
        assert rows[(bob.user_id, alice.user_id)].last_message_id == second
        assert rows[(alice.user_id, bob.user_id)].unread_count == 1
        assert rows[(bob.user_id, alice.user_id)].unread_count == 1
        assert first < second


def test_a_send_hit_by_a_deadlock_is_retried_and_stored_once(
    api, app, alice, bob, monkeypatch, caplog
) -> None:
    """The send transaction aborted by InnoDB (1213) runs again with the same clientMsgId."""
    import logging

    import pymysql
    from sqlalchemy.exc import OperationalError

    from tests.chat_support import send_text, sent_id
    from wsgi_app.extensions import db
    from wsgi_app.models.chat import Contact, Message
    from wsgi_app.services.chat import contacts as chat_contacts

    bump = chat_contacts.bump_contacts
    calls = []

    def deadlocked_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError(
                "INSERT INTO contacts", {}, pymysql.err.OperationalError(1213, "Deadlock found")
            )
        return bump(*args, **kwargs)

    monkeypatch.setattr(chat_contacts, "bump_contacts", deadlocked_once)
    with caplog.at_level(logging.WARNING, logger="datingtoday.transactions"):
        msg_id = sent_id(send_text(api, alice, bob, "through a deadlock", "dl-1"))
    assert len(calls) == 2
    assert "chat send: MySQL error 1213 (deadlock), retry 1" in caplog.text
    with app.app_context():
        assert db.session.query(Message).filter_by(client_msg_id="dl-1").one().id == msg_id
        assert db.session.query(Contact).filter_by(user_id=bob.user_id).one().unread_count == 1
