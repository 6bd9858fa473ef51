"""Blocks between users. A block works both ways: neither sees the other anywhere.

A block ends a match between the two (both get an ``unmatch`` event) and drops
their likes both ways, in the block's own transaction.

Blocking and unblocking share one rate limit per user (``BLOCK_CHANGE_LIMITS``):
toggling a block is a way to flicker in and out of someone's lists and
to load the database, not something a person does hundreds of times a day.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Exists, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import SQLCoreOperations

from wsgi_app import transactions
from wsgi_app.errors import PARAM_INVALID, USER_NOT_FOUND, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.social import Block
from wsgi_app.models.user import User
from wsgi_app.services import rate_limit
from wsgi_app.services.location import nearby_viewer
from wsgi_app.services.matching import ending
from wsgi_app.timeutil import format_wire_datetime


def is_blocked_between_clause(user_a: int | ColumnElement[Any], user_b: int | ColumnElement[Any]) -> Exists:
    """SQL ``EXISTS``: either user blocked the other (to merge into another query)."""
    return (
        db.select(Block.blocker_id)
        .where(
            or_(
                (Block.blocker_id == user_a) & (Block.blocked_id == user_b),
                (Block.blocker_id == user_b) & (Block.blocked_id == user_a),
            )
        )
        .exists()
    )


def is_blocked_between(user_a: int, user_b: int) -> bool:
    """True when either user blocked the other."""
    return bool(db.session.execute(db.select(is_blocked_between_clause(user_a, user_b))).scalar())


def blocked_either_way_clause(
    user_id: int | ColumnElement[Any], column: SQLCoreOperations[int]
) -> ColumnElement[bool]:
    """A SQL condition excluding rows whose ``column`` (a user id) is blocked either way."""
    blocked = db.select(Block.blocked_id).where(Block.blocker_id == user_id)
    blockers = db.select(Block.blocker_id).where(Block.blocked_id == user_id)
    return column.not_in(blocked) & column.not_in(blockers)


# -- blocking and unblocking (``/api/block``) -------------------------------------------


def other_user(caller_id: int, peer_id: int, action: str) -> User:
    """The peer of a block or report: an existing user who is not the caller."""
    if peer_id == caller_id:
        raise ApiError(PARAM_INVALID, f"peerId: you cannot {action} yourself")
    peer = db.session.get(User, peer_id)
    if peer is None:
        raise ApiError(USER_NOT_FOUND)
    return peer


def _limit_block_changes(user_id: int) -> None:
    limits = current_app.config["BLOCK_CHANGE_LIMITS"]
    rate_limit.enforce(redis_client(), f"block:change:{user_id}", limits, "block changes")


def block(blocker_id: int, peer_id: int) -> None:
    """Block ``peer_id`` (idempotent: blocking again changes nothing)."""
    other_user(blocker_id, peer_id, "block")
    _limit_block_changes(blocker_id)
    exists = db.session.get(Block, (blocker_id, peer_id))
    if exists is not None:
        return

    def work() -> None:
        db.session.add(Block(blocker_id=blocker_id, blocked_id=peer_id))
        db.session.flush()
        ending.end_match(blocker_id, peer_id)  # blocking undoes a match, for both
        ending.forget_likes(blocker_id, peer_id)

    with contextlib.suppress(IntegrityError):  # a concurrent identical block won; same outcome
        transactions.write(work, what="block")
    nearby_viewer.forget([blocker_id, peer_id])  # their cached nearby exclusions


def unblock(blocker_id: int, peer_id: int) -> None:
    """Lift the caller's block of ``peer_id`` (idempotent). A block by the peer stays."""
    other_user(blocker_id, peer_id, "unblock")
    _limit_block_changes(blocker_id)
    transactions.write_statement(
        db.delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == peer_id), what="unblock"
    )
    nearby_viewer.forget([blocker_id, peer_id])  # their cached nearby exclusions


def blocks_page(blocker_id: int, page: int, page_count: int) -> dict[str, Any]:
    """The people ``blocker_id`` blocked, latest first."""
    total = db.session.execute(
        db.select(func.count()).select_from(Block).where(Block.blocker_id == blocker_id)
    ).scalar_one()
    rows = db.session.execute(
        db.select(User.id, User.nickname, User.avatar, Block.created_at)
        .join(User, User.id == Block.blocked_id)
        .where(Block.blocker_id == blocker_id)
        .order_by(Block.created_at.desc(), Block.blocked_id.desc())
        .offset((page - 1) * page_count)
        .limit(page_count)
    ).all()
    items = [
        {"user_id": uid, "nickname": nickname, "avatar": avatar, "blocked_at": format_wire_datetime(at)}
        for uid, nickname, avatar, at in rows
    ]
    return {"total": total, "list": items, "has_next": page * page_count < total}
