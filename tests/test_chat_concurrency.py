"""Concurrent sends: the poll cursor never skips a message, and a raced retry is stored once."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient
from wsgi_app.extensions import db
from wsgi_app.models.chat import Message
from wsgi_app.services.chat import contacts as chat_contacts

SENDERS = 4
MESSAGES_PER_SENDER = 8


def test_a_poller_racing_concurrent_senders_gets_every_message_once(
    live_api: ApiClient, app: Flask, auth, monkeypatch
) -> None:
    app.config["LONGPOLL_TIMEOUT_SECS"] = 1
    # Widen the window between a message's insert and its commit, where a later id
    # could otherwise commit first and be seen by the poller before an earlier one.
    bump_contacts = chat_contacts.bump_contacts

    def slow_bump_contacts(*args, **kwargs):
        time.sleep(random.uniform(0, 0.02))
        return bump_contacts(*args, **kwargs)

    monkeypatch.setattr(chat_contacts, "bump_contacts", slow_bump_contacts)
    alice = auth.login()
    senders = [auth.login() for _ in range(SENDERS)]
    done = threading.Event()
    received: list[int] = []

    def poller() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read before polling: one last poll after the senders
            reply = live_api.get("/api/chat/poll", {"cursor": cursor, "limit": 5}, user=alice)
            assert reply.status == 200, reply.body
            received.extend(m["msg_id"] for m in reply.data["list"])
            cursor = reply.data["cursor"]
            if finished and not reply.data["has_more"]:
                return

    def send_all(sender) -> list[int]:
        return [sent_id(send_text(live_api, sender, alice, f"n{i}")) for i in range(MESSAGES_PER_SENDER)]

    with ThreadPoolExecutor(max_workers=SENDERS + 1) as pool:
        polling = pool.submit(poller)
        sent = [pool.submit(send_all, s) for s in senders]
        all_ids = sorted(i for f in sent for i in f.result(60))
        done.set()
        polling.result(60)
    assert received == all_ids  # in order, none skipped, none twice


def test_a_raced_retry_is_stored_once(live_api: ApiClient, app: Flask, auth) -> None:
    alice, bob = auth.login(), auth.login()
    barrier = threading.Barrier(4)

    def send_same() -> int:
        barrier.wait(5)
        return sent_id(send_text(live_api, alice, bob, "only once", "raced-1"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = {f.result(30) for f in [pool.submit(send_same) for _ in range(4)]}
    assert len(ids) == 1
    with app.app_context():
        assert db.session.query(Message).filter_by(client_msg_id="raced-1").count() == 1
