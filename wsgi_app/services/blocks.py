"""Blocks between users. A block works both ways: neither sees the other anywhere."""

from __future__ import annotations

from sqlalchemy import or_

from wsgi_app.extensions import db
from wsgi_app.models.social import Block


def is_blocked_between(user_a: int, user_b: int) -> bool:
    """True when either user blocked the other."""
    row = db.session.execute(
        db.select(Block.blocker_id).where(
            or_(
                (Block.blocker_id == user_a) & (Block.blocked_id == user_b),
                (Block.blocker_id == user_b) & (Block.blocked_id == user_a),
            )
        )
    ).first()
    return row is not None


def hidden_user_ids(user_id: int) -> set[int]:
    """Everyone ``user_id`` blocked or was blocked by (to filter lists)."""
    blocked = db.session.execute(db.select(Block.blocked_id).where(Block.blocker_id == user_id)).scalars()
    blockers = db.session.execute(db.select(Block.blocker_id).where(Block.blocked_id == user_id)).scalars()
    return set(blocked) | set(blockers)


def blocked_either_way_clause(user_id: int, column):  # type: ignore[no-untyped-def]
    """A SQL condition excluding rows whose ``column`` (a user id) is blocked either way."""
    blocked = db.select(Block.blocked_id).where(Block.blocker_id == user_id)
    blockers = db.select(Block.blocker_id).where(Block.blocked_id == user_id)
    return column.not_in(blocked) & column.not_in(blockers)
