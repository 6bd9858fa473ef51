"""Presence: "online now" or "active N minutes ago", and the ``presence`` event.

A person's last sign of life is ``users.last_active_at``, written by
:func:`record_active` at most once a minute per person for the whole fleet (the
caller first wins Redis's ``SET NX EX`` on :func:`write_gate_key`;
``async_handlers/presence.py`` also skips Redis for a person it saw in the last
minute). Signs of life are the requests of the native side: every event or chat
poll (a waiting poll re-polls within ``LONGPOLL_TIMEOUT_SECS``), chat sends and
nearby lists.

Online now = active within :data:`ONLINE_WINDOW_SECS` (longer than a poll's
wait plus the write interval, so a person holding a poll stays online).

Privacy: a person with ``presence_hidden`` shows no presence to anyone, and
sees no one's (:func:`presence_data` answers None both ways), and produces
and receives no ``presence`` events.

The ``presence`` event (ephemeral: never stored, only to waiting polls) goes
out when a person comes online (was not online before this write), only to
their matches and conversation partners, at most :data:`FANOUT_MAX` of them
(most recent first): fan-out stays bounded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, select, text, union

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact
from wsgi_app.models.matching import Match
from wsgi_app.models.user import User
from wsgi_app.services.events import producer
from wsgi_app.services.social.blocks import blocked_either_way_clause
from wsgi_app.timeutil import format_wire_datetime, utcnow

WRITE_INTERVAL_SECS = 60
ONLINE_WINDOW_SECS = 150
FANOUT_MAX = 200
WRITE_GATE_PREFIX = "presence:w"


# Built once, as text: an ORM update() here is not cached by SQLAlchemy (compiled on every write).
_TOUCH = transactions.single_statement(
    text("UPDATE users SET last_active_at = :now WHERE id = :user").bindparams(
        bindparam("now", type_=DateTime())
    )
)


def write_gate_key(user_id: int) -> str:
    """Redis key set (``NX``, ``WRITE_INTERVAL_SECS``) by the process that writes this minute."""
    return f"{WRITE_GATE_PREFIX}:{user_id}"


def is_online(last_active_at: datetime | None, now: datetime) -> bool:
    return last_active_at is not None and (now - last_active_at).total_seconds() < ONLINE_WINDOW_SECS


def presence_data(viewer_hidden: bool, user: Any, now: datetime | None = None) -> dict[str, Any] | None:
    """``{"online", "last_active_at", "active_minutes_ago"}`` of ``user`` for a viewer;
    None when either hides presence."""
    if viewer_hidden or user.presence_hidden:
        return None
    now = now or utcnow()
    last = user.last_active_at
    return {
        "online": is_online(last, now),
        "last_active_at": format_wire_datetime(last),
        "active_minutes_ago": None if last is None else max(0, int((now - last).total_seconds() // 60)),
    }


def viewer_hides_presence(user_id: int) -> bool:
    return bool(db.session.execute(select(User.presence_hidden).where(User.id == user_id)).scalar())


def record_active(user_id: int) -> bool:
    """Write ``user_id``'s sign of life; announce it when they came online. True if it did."""
    now = utcnow().replace(microsecond=0)
    row = db.session.execute(
        select(User.last_active_at, User.presence_hidden).where(User.id == user_id)
    ).first()
    if row is None:
        return False
    transactions.write_statement(_TOUCH, {"user": user_id, "now": now}, what="presence")
    came_online = not is_online(row.last_active_at, now)
    if came_online and not row.presence_hidden:
        partners = partners_of(user_id)
        if partners:
            event = producer.ephemeral_event(
                "presence", {"user_id": user_id, "online": True}, format_wire_datetime(now) or ""
            )
            producer.publish_ephemeral(partners, event)
    return came_online


def partners_of(user_id: int) -> list[int]:
    """Matches and conversation partners who may see presence (not hidden, not blocked), bounded."""
    matched = select(Match.peer_id.label("peer")).where(Match.user_id == user_id)
    talked = select(Contact.peer_id.label("peer")).where(Contact.user_id == user_id)
    peers = union(matched, talked).subquery()
    rows = db.session.execute(
        select(User.id)
        .where(
            User.id.in_(select(peers.c.peer)),
            User.presence_hidden.is_(False),
            blocked_either_way_clause(user_id, User.id),
        )
        .order_by(User.last_active_at.desc())
        .limit(FANOUT_MAX)
    ).scalars()
    return list(rows)


def recently(now: datetime | None = None) -> datetime:
    """The oldest ``last_active_at`` that still counts as online."""
    return (now or utcnow()) - timedelta(seconds=ONLINE_WINDOW_SECS)
