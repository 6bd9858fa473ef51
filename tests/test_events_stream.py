"""The durable event stream's core: ids per person in commit order, written with the change,
wake-ups only after commit, resync past retention."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask

from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient
from wsgi_app import transactions
from wsgi_app.errors import EVENTS_RESYNC, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.events import Event
from wsgi_app.services.chat.events import wake_channel
from wsgi_app.services.events import producer, retention, stream


def _events(app: Flask, user_id: int, cursor: int = 0) -> dict:
    with app.app_context():
        return stream.events_after(user_id, cursor, 100)


def test_ids_count_per_person_and_a_send_stores_a_message_event(
    app: Flask, api: ApiClient, alice, bob, carol
):
    first = sent_id(send_text(api, alice, bob, "one"))
    second = sent_id(send_text(api, carol, bob, "two"))
    sent_id(send_text(api, bob, alice, "back"))
    batch = _events(app, bob.user_id)
    assert [(e["id"], e["type"], e["payload"]["msg_id"]) for e in batch["events"]] == [
        (1, "message", first),
        (2, "message", second),
    ]
    assert batch["events"][0]["payload"]["content"] == "one" and batch["cursor"] == 2
    assert [e["id"] for e in _events(app, alice.user_id)["events"]] == [1]
    assert _events(app, bob.user_id, 1)["events"][0]["id"] == 2
    with app.app_context():
        assert stream.events_after(bob.user_id, None, 10) == {"events": [], "cursor": 2, "has_more": False}


def test_a_rolled_back_change_leaves_no_event_and_no_wake_up(app: Flask, alice) -> None:
    with app.app_context():
        subscriber = redis_client().pubsub()
        subscriber.subscribe(wake_channel(redis_client()))
        subscriber.get_message(timeout=1)

        def work() -> None:
            producer.append(alice.user_id, "vip", {"is_vip": True})
            raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            transactions.write(work)
        assert db.session.execute(db.select(Event)).first() is None
        assert subscriber.get_message(timeout=0.3) is None
        transactions.write(lambda: producer.append(alice.user_id, "vip", {"is_vip": True}))
        wake = subscriber.get_message(timeout=2)
        assert wake is not None and producer.parse_wake(wake["data"]) == producer.Wake(
            alice.user_id, False, None
        )
        subscriber.close()
        assert stream.events_after(alice.user_id, 0, 10)["events"][0]["id"] == 1


def test_the_wake_up_goes_out_only_after_the_commit(app: Flask, alice) -> None:
    """A poll woken by the wake-up must find the row: nothing is published before the commit."""
    seen_during_work: list[object] = []
    with app.app_context():
        subscriber = redis_client().pubsub()
        subscriber.subscribe(wake_channel(redis_client()))
        subscriber.get_message(timeout=1)

        def work() -> None:
            producer.append(alice.user_id, "vip", {"is_vip": True})
            seen_during_work.append(subscriber.get_message(timeout=0.3))

        transactions.write(work)
        assert seen_during_work == [None]
        assert subscriber.get_message(timeout=2) is not None
        subscriber.close()


def test_concurrent_producers_for_one_person_commit_in_id_order(app: Flask, alice, bob) -> None:
    """Two transactions producing events for one person: the later id is never visible while
    the earlier one is not (the counter row is held to commit)."""
    entered, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        with app.app_context():
            try:

                def work() -> None:
                    producer.append(bob.user_id, "vip", {"n": 1})
                    entered.set()
                    release.wait(5)

                transactions.write(work)
            except BaseException as err:  # noqa: BLE001
                errors.append(err)

    def fast_writer() -> None:
        with app.app_context():
            try:
                transactions.write(lambda: producer.append(bob.user_id, "vip", {"n": 2}))
            except BaseException as err:  # noqa: BLE001
                errors.append(err)

    first = threading.Thread(target=slow_writer)
    first.start()
    assert entered.wait(5)
    second = threading.Thread(target=fast_writer)
    second.start()
    second.join(0.5)
    # The second producer waits for the first one's counter row: nothing of it is visible yet.
    assert _events(app, bob.user_id)["events"] == []
    release.set()
    first.join(10)
    second.join(10)
    assert not errors
    assert [(e["id"], e["payload"]["n"]) for e in _events(app, bob.user_id)["events"]] == [(1, 1), (2, 2)]


def test_a_cursor_past_retention_or_ahead_of_the_stream_gets_resync(app: Flask, alice) -> None:
    with app.app_context():
        for n in range(3):
            transactions.write(lambda n=n: producer.append(alice.user_id, "vip", {"n": n}))  # type: ignore[misc]
        old = db.session.execute(db.select(Event).where(Event.id <= 2)).scalars().all()
        for event in old:
            event.created_at -= timedelta(seconds=app.config["EVENT_RETENTION_SECS"] + 60)
        db.session.commit()
        assert retention.prune() == 2
        for cursor in (0, 1, 4):
            with pytest.raises(ApiError) as err:
                stream.events_after(alice.user_id, cursor, 10)
            assert err.value.spec is EVENTS_RESYNC
        assert [e["id"] for e in stream.events_after(alice.user_id, 2, 10)["events"]] == [3]
        assert stream.events_after(alice.user_id, None, 10)["cursor"] == 3


def test_an_ephemeral_kind_cannot_be_stored(app: Flask, alice) -> None:
    with app.app_context(), pytest.raises(ValueError):
        transactions.write(lambda: producer.append(alice.user_id, "typing", {}))


def test_the_fleet_jobs_run_from_the_command_line(app: Flask, alice) -> None:
    with app.app_context():
        transactions.write(lambda: producer.append(alice.user_id, "vip", {"n": 1}))
        event = db.session.execute(db.select(Event)).scalar_one()
        event.created_at -= timedelta(seconds=app.config["EVENT_RETENTION_SECS"] + 60)
        db.session.commit()
    runner = app.test_cli_runner()
    pruned = runner.invoke(args=["events", "prune"])
    assert pruned.exit_code == 0 and pruned.output.strip() == "deleted 1 events", pruned.output
    expired = runner.invoke(args=["events", "vip-expiry"])
    assert expired.exit_code == 0 and expired.output.strip() == "announced 0 VIP expiries", expired.output
