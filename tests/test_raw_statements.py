"""The send transaction's statements on the bare cursor: round trips, errors, dead connections.

:mod:`wsgi_app.raw_statements` must behave like SQLAlchemy's execution: same
transaction (``BEGIN`` before the lock, the session's ``COMMIT``), SQLAlchemy's
exception classes (the deadlock retry and the duplicate-key path depend on them),
and the once-only reconnect of a killed pooled connection.
"""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError

from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient
from tests.test_transactions import (
    _database_round_trips,
    _raw_connection,
    _without_sqlite_begin,
    kill_pooled_connections,
    mariadb_only,
)
from wsgi_app.extensions import db
from wsgi_app.services.chat import send_statements
from wsgi_app.timeutil import utcnow


def _verbs(sent: list[str]) -> list[str]:
    return [s.lstrip().split()[0].upper() for s in sent]


def test_a_text_send_is_one_locking_read_four_inserts_in_one_transaction(
    app: Flask, api: ApiClient, alice, bob, monkeypatch
) -> None:
    assert sent_id(send_text(api, alice, bob, "warm", "w-1"))  # the token and appkey caches
    sent = _database_round_trips(app, monkeypatch)
    assert sent_id(send_text(api, alice, bob, "counted", "c-1"))
    sent = _without_sqlite_begin(app, sent)
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    # SQLite's COMMIT is not a cursor statement (and not a round trip). The inserts: the message, both
    # contact rows (one upsert), the recipient's event counter (one upsert that answers the new id),
    # the recipient's message event.
    inserts = ["INSERT"] * 4
    assert _verbs(sent) == (["SELECT", *inserts] if sqlite else ["BEGIN", "SELECT", *inserts, "COMMIT"])
    assert "FOR UPDATE" in sent[0 if sqlite else 1] or sqlite


def test_a_replay_reads_in_the_transaction_and_stores_nothing(
    app: Flask, api: ApiClient, alice, bob, monkeypatch
) -> None:
    first = sent_id(send_text(api, alice, bob, "once", "r-1"))
    sent = _database_round_trips(app, monkeypatch)
    reply = send_text(api, alice, bob, "once", "r-1")
    assert (
        reply.status == 200 and reply.data["duplicate"] is True and reply.data["message"]["msg_id"] == first
    )
    assert "INSERT" not in _verbs(sent)


def test_a_duplicate_insert_raises_sqlalchemys_integrity_error(
    app: Flask, alice, bob, api: ApiClient
) -> None:
    send_text(api, alice, bob, "first", "dup-1")
    values = {
        "sender_id": alice.user_id,
        "recipient_id": bob.user_id,
        "client_msg_id": "dup-1",
        "kind": "text",
        "body": "again",
        "media_filename": None,
        "created_at": utcnow().replace(microsecond=0),
    }
    with app.app_context():
        with pytest.raises(IntegrityError):
            send_statements.INSERT_MESSAGE.insert(values)
        db.session.rollback()
        rows = send_statements.LOCK_AND_CHECK.rows(
            {"sender": alice.user_id, "peer": bob.user_id, "cmid": "dup-1"}
        )
        db.session.rollback()
    assert sorted(row[0] for row in rows) == sorted([alice.user_id, bob.user_id])
    assert all(row[2] is not None and not row[1] for row in rows)


@mariadb_only
def test_a_send_on_a_killed_pooled_connection_reconnects_once(
    app: Flask, api: ApiClient, alice, bob, caplog
) -> None:
    assert sent_id(send_text(api, alice, bob, "before", "k-0"))
    kill_pooled_connections(app)
    with caplog.at_level(logging.WARNING, logger="datingtoday.database"):
        assert sent_id(send_text(api, alice, bob, "after", "k-1"))
    assert any("reconnecting once" in r.getMessage() for r in caplog.records)


@mariadb_only
def test_a_connection_killed_inside_the_transaction_fails_it_and_is_replaced(app: Flask, alice, bob) -> None:
    from sqlalchemy.exc import OperationalError

    from wsgi_app.failures import mysql_error_code

    params = {"sender": alice.user_id, "peer": bob.user_id, "cmid": "killed-1"}
    values = {
        "sender_id": alice.user_id,
        "recipient_id": bob.user_id,
        "client_msg_id": "killed-1",
        "kind": "text",
        "body": "lost",
        "media_filename": None,
        "created_at": utcnow().replace(microsecond=0),
    }
    with app.app_context():
        send_statements.LOCK_AND_CHECK.rows(params)  # BEGIN, then the locks: a transaction is open
        thread_id = db.session.connection().connection.dbapi_connection.thread_id()  # type: ignore[union-attr]
        killer = _raw_connection(app)
        try:
            killer.cursor().execute(f"KILL {thread_id}")
        finally:
            killer.close()
        with pytest.raises(OperationalError) as failure:
            send_statements.INSERT_MESSAGE.insert(values)  # not resent: the transaction is gone
        assert mysql_error_code(failure.value) in (2006, 2013)
        db.session.rollback()
        assert len(send_statements.LOCK_AND_CHECK.rows(params)) == 2  # a new connection
        db.session.rollback()
