"""Reading a person's event stream by cursor (the poll's one database read).

The cursor is the highest event id the client has (ids count per person:
:mod:`wsgi_app.services.events.producer`). :func:`events_after` answers the
events with a higher id, oldest first, at most ``limit``; the answer's cursor
is the last id it covers. A ``message`` event is rendered from its message row
(a recalled message, or one from someone blocked either way, is left out: the
cursor still moves past it, so nothing is answered twice or looks missing).

Resync: retention deletes old events and records the highest deleted id per
person (``event_counters.pruned_through``). A cursor below it has missed
events that no longer exist: the answer is the ``EVENTS_RESYNC`` error (never
a partial page that looks complete); so is a cursor above the last id given
out (it belongs to other data, e.g. a restored database). Without a cursor the
answer is the current cursor at once, to start from.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, bindparam

from wsgi_app.errors import EVENTS_RESYNC, ApiError
from wsgi_app.extensions import db
from wsgi_app.models.chat import Message
from wsgi_app.models.events import Event, EventCounter
from wsgi_app.services.chat.messages import message_data
from wsgi_app.services.social.blocks import blocked_either_way_clause
from wsgi_app.timeutil import format_wire_datetime

MAX_EVENT_BATCH = 100
RESYNC_HINT = (
    "cursor outside the kept events: rebuild state (GET /api/contacts/list, /api/chat/history, "
    "/api/match/list, /api/visitor/summary, /api/vip/status), then poll without a cursor"
)

_events, _messages, _counters = Event.__table__, Message.__table__, EventCounter.__table__
_COUNTER = db.select(_counters.c.last_id, _counters.c.pruned_through).where(
    _counters.c.user_id == bindparam("user")
)
_EVENTS_AFTER = (
    db.select(_events, _messages)
    .select_from(
        _events.outerjoin(
            _messages,
            and_(
                _events.c.kind == "message",
                _messages.c.id == _events.c.ref_id,
                blocked_either_way_clause(bindparam("user"), _messages.c.sender_id),
            ),
        )
    )
    .where(_events.c.user_id == bindparam("user"), _events.c.id > bindparam("cursor"))
    .order_by(_events.c.id)
    .limit(bindparam("limit"))
)


def current_cursor(user_id: int) -> tuple[int, int]:
    """``(last id given out, highest id deleted by retention)`` for ``user_id`` (0, 0 if none)."""
    row = db.session.connection().execute(_COUNTER, {"user": user_id}).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def events_after(user_id: int, cursor: int | None, limit: int) -> dict[str, Any]:
    """``{"events": [...], "cursor": N, "has_more": bool}``: events after ``cursor``, oldest first."""
    last_id, pruned_through = current_cursor(user_id)
    if cursor is None:
        return {"events": [], "cursor": last_id, "has_more": False}
    if cursor < pruned_through or cursor > last_id:
        raise ApiError(EVENTS_RESYNC, RESYNC_HINT)
    if cursor == last_id:
        return {"events": [], "cursor": cursor, "has_more": False}
    params = {"user": user_id, "cursor": cursor, "limit": limit + 1}
    rows = db.session.connection().execute(_EVENTS_AFTER, params).all()
    batch = rows[:limit]
    events = [wire for row in batch if (wire := _wire_event(row)) is not None]
    return {"events": events, "cursor": batch[-1][1] if batch else cursor, "has_more": len(rows) > limit}


def _wire_event(row: Any) -> dict[str, Any] | None:
    """``{"id", "type", "at", "payload"}``; None for a message event whose message is gone or hidden."""
    mapping = row._mapping
    kind = mapping[_events.c.kind]
    if kind == "message":
        if mapping[_messages.c.id] is None:
            return None
        payload: dict[str, Any] = message_data(_MessageRow(mapping))  # type: ignore[arg-type]
    else:
        raw = mapping[_events.c.payload]
        payload = json.loads(raw) if raw else {}
    return {
        "id": mapping[_events.c.id],
        "type": kind,
        "at": format_wire_datetime(mapping[_events.c.created_at]),
        "payload": payload,
    }


class _MessageRow:
    """The message columns of a joined row, as :func:`message_data` reads them."""

    def __init__(self, mapping: Any) -> None:
        for column in _messages.c:
            setattr(self, column.name, mapping[column])
