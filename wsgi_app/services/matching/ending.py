"""Ending a match (an unmatch, or a block), inside the caller's transaction.

Both ``matches`` rows go, and both people get an ``unmatch`` event carrying only
the peer's id (the client drops the match from its lists; no reason is given,
so the other side is not told who ended it or why). Imports only models and
the event producer: :mod:`wsgi_app.services.social.blocks` calls it from its
own transaction without an import cycle.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_

from wsgi_app.extensions import db
from wsgi_app.models.matching import Like, Match
from wsgi_app.services.events import producer


def _pair(user_a: int, user_b: int) -> Any:
    return or_(
        and_(Match.user_id == user_a, Match.peer_id == user_b),
        and_(Match.user_id == user_b, Match.peer_id == user_a),
    )


def end_match(user_a: int, user_b: int) -> bool:
    """Delete the pair's match (inside the caller's write) and tell both sides' devices to drop it;
    False when they were not matched."""
    deleted = cast(CursorResult[Any], db.session.execute(delete(Match).where(_pair(user_a, user_b)))).rowcount
    if not deleted:
        return False
    producer.append_many(
        [
            producer.NewEvent(user_a, "unmatch", {"peer_id": user_b}),
            producer.NewEvent(user_b, "unmatch", {"peer_id": user_a}),
        ]
    )
    return True


def forget_likes(user_a: int, user_b: int) -> None:
    """Drop the pair's likes both ways (a block: no trace of interest stays)."""
    db.session.execute(
        delete(Like).where(
            or_(
                and_(Like.liker_id == user_a, Like.liked_id == user_b),
                and_(Like.liker_id == user_b, Like.liked_id == user_a),
            )
        )
    )
