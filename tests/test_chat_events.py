"""The send's announcement: the latest-message key (raise-only, TTL, written before the wake-up)."""

from __future__ import annotations

import redis
from flask import Flask

from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient
from wsgi_app.extensions import redis_client
from wsgi_app.services.chat import events as chat_events


def test_a_send_raises_the_recipients_key_and_wakes_them(app: Flask, api: ApiClient, alice, bob) -> None:
    with app.app_context():
        client = redis_client()
        subscriber = client.pubsub()
        subscriber.subscribe(chat_events.wake_channel(client))
        subscriber.get_message(timeout=1)  # the subscribe confirmation
    msg_id = sent_id(send_text(api, alice, bob, "hi"))
    with app.app_context():
        key = chat_events.latest_message_key(bob.user_id)
        latest = redis_client().get(key)
        assert latest is not None and int(latest) == msg_id
        assert 0 < redis_client().ttl(key) <= chat_events.LATEST_MESSAGE_TTL_SECS
        assert redis_client().get(chat_events.latest_message_key(alice.user_id)) is None
        wake = subscriber.get_message(timeout=2)
        assert wake is not None and chat_events.user_id_from_payload(wake["data"]) == bob.user_id
        subscriber.close()


def test_the_key_only_rises(app: Flask) -> None:
    with app.app_context():
        chat_events.announce_new_message(7, 100)
        chat_events.announce_new_message(7, 90)  # a slower sender of an older message arrives late
        assert redis_client().get(chat_events.latest_message_key(7)) == "100"
        chat_events.announce_new_message(7, 101)
        assert redis_client().get(chat_events.latest_message_key(7)) == "101"


def test_the_key_is_written_before_the_wake_up_in_one_round_trip(app: Flask, monkeypatch) -> None:
    with app.app_context():
        client = redis_client()
        pipelines: list[list[str]] = []
        make_pipeline = client.pipeline

        def recording_pipeline(*args, **kwargs):
            pipe = make_pipeline(*args, **kwargs)
            execute = pipe.execute

            def recording_execute(*a, **k):
                pipelines.append([str(command[0][0]).upper() for command in pipe.command_stack])
                return execute(*a, **k)

            monkeypatch.setattr(pipe, "execute", recording_execute)
            return pipe

        chat_events.announce_new_message(8, 4)  # Redis has the script from here on
        monkeypatch.setattr(client, "pipeline", recording_pipeline)
        chat_events.announce_new_message(8, 5)
    assert pipelines == [["EVALSHA", "PUBLISH"]]


def test_without_the_script_the_key_is_raised_then_the_wake_up_repeated(app: Flask) -> None:
    with app.app_context():
        client = redis_client()
        subscriber = client.pubsub()
        subscriber.subscribe(chat_events.wake_channel(client))
        subscriber.get_message(timeout=1)  # the subscribe confirmation
        client.script_flush()
        chat_events.announce_new_message(6, 70)
        assert client.get(chat_events.latest_message_key(6)) == "70"
        wakes = [subscriber.get_message(timeout=1) for _ in range(2)]
        assert all(w is not None and chat_events.user_id_from_payload(w["data"]) == 6 for w in wakes)
        subscriber.close()


def test_a_failed_announcement_leaves_no_stale_key(app: Flask, monkeypatch) -> None:
    with app.app_context():
        client = redis_client()
        chat_events.announce_new_message(9, 50)

        def broken_pipeline(*args, **kwargs):
            raise redis.ConnectionError("connection reset")

        monkeypatch.setattr(client, "pipeline", broken_pipeline)
        chat_events.announce_new_message(9, 51)  # never raises: the message is stored already
        assert client.get(chat_events.latest_message_key(9)) is None  # "unknown": polls read the database
