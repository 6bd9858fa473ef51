"""The one producer of the event stream: durable events in the writer's transaction, wake-ups after.

Durable events (``message``, ``read``, ``recall``, ``visit``, ``vip``, ``like``,
``match``, ``unmatch``) are rows of ``events``, written by :func:`append`
inside the :func:`wsgi_app.transactions.write` that makes the change, so the
event exists exactly when the change does. After the commit
(:func:`wsgi_app.transactions.on_commit`) one pipelined Redis round trip
publishes a wake-up per person on the chat wake channel
(:func:`wsgi_app.services.chat.events.wake_channel`): it only says "look
again"; the poll reads the rows by cursor, so a lost wake-up delays, never
loses. A ``message`` event publishes no wake-up of its own: the message's
announcement (:func:`wsgi_app.services.chat.events.announce_new_message`)
already wakes every poll of the recipient.

Ephemeral events (``typing``, ``presence``) are never stored:
:func:`publish_ephemeral` puts the whole event in the wake-up, and each
process's listener hands it to that person's waiting event polls. A person
with no waiting poll at that moment does not get it (best effort, by design).

Why a per-person counter row, and not a global auto-increment id: the cursor
is "the highest event id I have". With a global auto-increment, two
transactions adding events for one person may take ids 10 and 11 and commit
11 first; a poll in between answers 11, and 10 (committed later) is below the
cursor and skipped for ever. :func:`append` instead raises
``event_counters.last_id`` for the person with an upsert: the statement takes
that row's lock (MariaDB: an exclusive record lock held to commit; SQLite: the
one writer lock of ``BEGIN IMMEDIATE``), so a second transaction producing
events for the same person waits until the first commits, and reads the
counter the first committed. Ids of one person are therefore given out and
committed in the same order, and ``id > cursor`` never misses a committed
event. A transaction producing events for several people locks their
counters in id order (:func:`append_many`), so two such transactions cannot
deadlock on them (a deadlock elsewhere is retried by ``transactions.write``
from the start, counters included).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import DateTime, bindparam, text

from wsgi_app import transactions
from wsgi_app.extensions import db, redis_client
from wsgi_app.raw_statements import RawStatement
from wsgi_app.services.chat.events import wake_channel
from wsgi_app.timeutil import utcnow

log = logging.getLogger("datingtoday.events")

DURABLE_KINDS = ("message", "read", "recall", "visit", "vip", "like", "match", "unmatch")
EPHEMERAL_KINDS = ("typing", "presence")

# Raise a person's counter and learn the new value in ONE statement (the send path's budget):
# MariaDB/MySQL: LAST_INSERT_ID(expr) makes the statement's insert id (the OK packet's, PyMySQL's
# lastrowid) the new value, on the insert and on the update path alike; SQLite: RETURNING.
_RAISE_MYSQL = RawStatement(
    text(
        "INSERT INTO event_counters (user_id, last_id, pruned_through) VALUES (:user, LAST_INSERT_ID(1), 0) "
        "ON DUPLICATE KEY UPDATE last_id = LAST_INSERT_ID(last_id + 1)"
    )
)
_RAISE_SQLITE = RawStatement(
    text(
        "INSERT INTO event_counters (user_id, last_id, pruned_through) VALUES (:user, 1, 0) "
        "ON CONFLICT (user_id) DO UPDATE SET last_id = event_counters.last_id + 1 RETURNING last_id"
    )
)
_INSERT = RawStatement(
    text(
        "INSERT INTO events (user_id, id, kind, ref_id, payload, created_at) "
        "VALUES (:user, :id, :kind, :ref, :payload, :at)"
    ).bindparams(bindparam("at", type_=DateTime()))
)


@dataclass(frozen=True)
class NewEvent:
    """One durable event to store for ``user_id``."""

    user_id: int
    kind: str
    payload: Mapping[str, Any] | None = None
    ref_id: int | None = None


def append(
    user_id: int, kind: str, payload: Mapping[str, Any] | None = None, ref_id: int | None = None
) -> int:
    """Store one durable event for ``user_id`` in the current write; its id. See :func:`append_many`."""
    return append_many([NewEvent(user_id, kind, payload, ref_id)])[0]


def append_many(new_events: Iterable[NewEvent]) -> list[int]:
    """Store durable events inside the enclosing :func:`transactions.write` (never outside one),
    people's counters locked in user id order; wake their polls after the commit. Ids are
    returned in the order given."""
    pending = list(new_events)
    for event in pending:
        if event.kind not in DURABLE_KINDS:
            raise ValueError(f"not a durable event kind: {event.kind}")
    order = sorted(range(len(pending)), key=lambda i: pending[i].user_id)
    ids = [0] * len(pending)
    now = utcnow().replace(microsecond=0)
    for index in order:
        event = pending[index]
        ids[index] = _next_id(event.user_id)
        payload = None if event.payload is None else json.dumps(event.payload, separators=(",", ":"))
        _INSERT.run(
            {
                "user": event.user_id,
                "id": ids[index],
                "kind": event.kind,
                "ref": event.ref_id,
                "payload": payload,
                "at": now,
            }
        )
    to_wake = {(event.user_id, ids[i]) for i, event in enumerate(pending) if event.kind != "message"}
    if to_wake:
        transactions.on_commit(lambda: _publish([wake_payload(user, event_id) for user, event_id in to_wake]))
    return ids


def _next_id(user_id: int) -> int:
    """Raise ``user_id``'s counter (taking its row lock until the commit); the new value."""
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name in ("mysql", "mariadb"):
        if dialect.driver != "pymysql":
            raise RuntimeError("the event counter needs PyMySQL's insert id (DATABASE_URL mysql+pymysql://)")
        return _RAISE_MYSQL.insert({"user": user_id})
    ((last_id,),) = _RAISE_SQLITE.rows({"user": user_id})
    return int(last_id)


def wake_payload(user_id: int, event_id: int) -> str:
    """A durable event's wake-up: which person, which id (the poll reads the row)."""
    return json.dumps({"user_id": user_id, "ev": event_id}, separators=(",", ":"))


def ephemeral_payload(user_id: int, event: Mapping[str, Any]) -> str:
    """An ephemeral event's wake-up: the person and the whole event (it exists nowhere else)."""
    return json.dumps({"user_id": user_id, "eph": event}, separators=(",", ":"))


def ephemeral_event(kind: str, payload: Mapping[str, Any], at: str) -> dict[str, Any]:
    """The wire form of an ephemeral event: no id (it does not move the cursor)."""
    if kind not in EPHEMERAL_KINDS:
        raise ValueError(f"not an ephemeral event kind: {kind}")
    return {"id": None, "type": kind, "at": at, "payload": dict(payload)}


def publish_ephemeral(user_ids: Iterable[int], event: Mapping[str, Any]) -> None:
    """Hand ``event`` to the waiting event polls of ``user_ids`` on every process (best effort)."""
    _publish([ephemeral_payload(user_id, event) for user_id in user_ids])


@dataclass(frozen=True)
class Wake:
    """A parsed wake-up: whose polls; a message or durable event (look again), or an ephemeral event."""

    user_id: int
    message: bool
    ephemeral: dict[str, Any] | None


def parse_wake(data: str | bytes) -> Wake | None:
    """The wake-up on the channel (chat's ``msg_id`` form or ours), None when malformed."""
    try:
        body = json.loads(data)
        user_id = body["user_id"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    ephemeral = body.get("eph")
    return Wake(
        user_id, "ev" not in body and ephemeral is None, ephemeral if isinstance(ephemeral, dict) else None
    )


def _publish(payloads: list[str]) -> None:
    if not payloads:
        return
    client = redis_client()
    try:
        channel = wake_channel(client)
        pipe = client.pipeline(transaction=False)
        for payload in payloads:
            pipe.execute_command("PUBLISH", channel, payload)
        pipe.execute()
    except redis.RedisError:
        # Durable events are stored: polls find them on their next look. Ephemeral ones are lost.
        log.warning("could not publish %d event wake-ups", len(payloads), exc_info=True)
