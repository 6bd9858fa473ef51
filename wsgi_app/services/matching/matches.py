"""Matches: made by a mutual like, ended by an unmatch or a block, listed per person.

A match is two ``matches`` rows (one per side), created and deleted together in
one transaction with the ``match`` / ``unmatch`` events of both people. Ending
one is silent for the other side: their ``unmatch`` event carries only the
peer's id, for the client to drop the match from its lists (no reason given).
Ending a match is :mod:`wsgi_app.services.matching.ending` (blocks call it too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from wsgi_app.extensions import db
from wsgi_app.models.matching import Match
from wsgi_app.models.user import User
from wsgi_app.services.chat.contacts import peer_summary
from wsgi_app.services.events import presence, producer
from wsgi_app.services.social.blocks import blocked_either_way_clause
from wsgi_app.timeutil import format_wire_datetime


def are_matched(user_a: int, user_b: int) -> bool:
    return db.session.get(Match, (user_a, user_b)) is not None


def make_match(user_a: int, user_b: int, users: dict[int, User], now: datetime) -> None:
    """Both rows and both ``match`` events (inside the caller's write; the pair's rows are locked)."""
    db.session.add_all(
        [
            Match(user_id=user_a, peer_id=user_b, created_at=now),
            Match(user_id=user_b, peer_id=user_a, created_at=now),
        ]
    )
    at = format_wire_datetime(now)
    producer.append_many(
        [
            producer.NewEvent(user_a, "match", {"peer": peer_summary(users[user_b]), "matched_at": at}),
            producer.NewEvent(user_b, "match", {"peer": peer_summary(users[user_a]), "matched_at": at}),
        ]
    )


def matches_page(user_id: int, page: int, page_count: int) -> dict[str, Any]:
    """The people matched with ``user_id``, newest match first, with their presence."""
    where = (Match.user_id == user_id) & blocked_either_way_clause(user_id, Match.peer_id)
    total = db.session.execute(select(func.count()).select_from(Match).where(where)).scalar_one()
    rows = db.session.execute(
        select(Match.created_at, User)
        .join(User, User.id == Match.peer_id)
        .where(where)
        .order_by(Match.created_at.desc(), Match.peer_id.desc())
        .offset((page - 1) * page_count)
        .limit(page_count)
    ).all()
    viewer_hidden = presence.viewer_hides_presence(user_id)
    items = [
        {
            "peer": peer_summary(peer),
            "matched_at": format_wire_datetime(created_at),
            "presence": presence.presence_data(viewer_hidden, peer),
        }
        for created_at, peer in rows
    ]
    return {"total": int(total), "list": items, "has_next": page * page_count < total}
