"""Like, super-like or pass a person; a like is invisible to its target unless it is mutual.

One transaction per decision: both people's ``users`` rows locked in id order
(so two people liking each other at the same moment are serialised, and the
second sees the first's like: the match is made exactly once), the checks
(the target exists and neither blocked the other), the daily limits (counted
from the liker's own ``likes`` rows of the current UTC day, under the lock, so
they are exact under concurrency), then the ``likes`` row (one per ordered
pair: the latest decision). A like or super-like of someone who likes you back
is a match (:func:`wsgi_app.services.matching.matches.make_match`); otherwise
only a VIP target learns of it (a ``like`` event, and the received-likes list);
nobody else ever sees who liked them.

Limits (UTC day, like + super-like together): ``LIKES_PER_DAY`` (50) and
``SUPER_LIKES_PER_DAY`` (1) for everyone, ``..._VIP`` (500, 5) for VIP;
``LIKE_LIMIT_REACHED`` / ``SUPER_LIKE_LIMIT_REACHED`` when used up. Liking again
someone you already like costs nothing; a pass costs nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from wsgi_app import transactions
from wsgi_app.errors import (
    BLOCKED,
    LIKE_LIMIT_REACHED,
    PARAM_INVALID,
    SUPER_LIKE_LIMIT_REACHED,
    USER_NOT_FOUND,
    ApiError,
)
from wsgi_app.extensions import db
from wsgi_app.models.matching import Like
from wsgi_app.models.user import User
from wsgi_app.services.chat.contacts import peer_summary
from wsgi_app.services.events import producer
from wsgi_app.services.matching import ending, matches
from wsgi_app.services.social.blocks import blocked_either_way_clause, is_blocked_between
from wsgi_app.services.vip.status import is_vip
from wsgi_app.timeutil import format_wire_datetime, utcnow

KIND_LIKE, KIND_SUPER, KIND_PASS = "like", "super", "pass"
KINDS = (KIND_LIKE, KIND_SUPER, KIND_PASS)
POSITIVE = (KIND_LIKE, KIND_SUPER)


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _limits(vip: bool) -> tuple[int, int]:
    config = current_app.config
    if vip:
        return int(config["LIKES_PER_DAY_VIP"]), int(config["SUPER_LIKES_PER_DAY_VIP"])
    return int(config["LIKES_PER_DAY"]), int(config["SUPER_LIKES_PER_DAY"])


def _used_today(liker_id: int, now: datetime) -> tuple[int, int]:
    """``(likes + super-likes, super-likes)`` the liker gave today (UTC)."""
    since = day_start(now)
    row = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(db.case((Like.kind == KIND_SUPER, 1), else_=0)), 0),
        ).where(Like.liker_id == liker_id, Like.created_at >= since, Like.kind.in_(POSITIVE))
    ).one()
    return int(row[0]), int(row[1])


def decide(liker_id: int, peer_id: int, kind: str) -> dict[str, Any]:
    """Record ``liker_id``'s like / super-like / pass of ``peer_id``; whether it made a match."""
    if kind not in KINDS:
        raise ApiError(PARAM_INVALID, "kind: like, super or pass")
    if liker_id == peer_id:
        raise ApiError(PARAM_INVALID, "peerId: not yourself")

    def work() -> dict[str, Any]:
        now = utcnow().replace(microsecond=0)
        users = {
            user.id: user
            for user in db.session.execute(
                select(User)
                .where(User.id.in_([liker_id, peer_id]))
                .order_by(User.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalars()
        }
        if peer_id not in users:
            raise ApiError(USER_NOT_FOUND)
        if is_blocked_between(liker_id, peer_id):
            raise ApiError(BLOCKED, "not available")
        liker = users[liker_id]
        likes_max, supers_max = _limits(is_vip(liker, now))
        previous = db.session.get(Like, (liker_id, peer_id), populate_existing=True)
        previous_kind = previous.kind if previous is not None else None
        used, supers_used = _used_today(liker_id, now)
        counted_today = (
            previous is not None and previous.created_at >= day_start(now) and previous_kind in POSITIVE
        )
        if kind in POSITIVE and previous_kind != kind:
            if not counted_today and used >= likes_max:
                raise ApiError(LIKE_LIMIT_REACHED, f"no likes left today ({likes_max} a day)")
            if kind == KIND_SUPER and supers_used >= supers_max:
                raise ApiError(SUPER_LIKE_LIMIT_REACHED, f"no super-likes left today ({supers_max} a day)")
        if previous is None:
            db.session.add(Like(liker_id=liker_id, liked_id=peer_id, kind=kind, created_at=now))
        elif previous_kind != kind:
            previous.kind, previous.created_at = kind, now
        matched = matches.are_matched(liker_id, peer_id)
        if kind in POSITIVE and not matched:
            back = db.session.get(Like, (peer_id, liker_id), populate_existing=True)
            if back is not None and back.kind in POSITIVE:
                db.session.flush()
                matches.make_match(liker_id, peer_id, users, now)
                matched = True
            elif previous_kind not in POSITIVE and is_vip(users[peer_id], now):
                payload = {"liker": peer_summary(liker), "kind": kind}
                producer.append(peer_id, "like", payload)
        db.session.flush()
        used, supers_used = _used_today(liker_id, now)
        return {
            "peer_id": peer_id,
            "kind": kind,
            "matched": matched,
            "likes_left": max(0, likes_max - used),
            "super_likes_left": max(0, supers_max - supers_used),
        }

    return transactions.write(work, what="like")


def received_page(user_id: int, page: int, page_count: int) -> dict[str, Any]:
    """Who likes ``user_id`` (VIP only; the caller checks), newest first, without matches made,
    people passed, or anyone blocked either way."""
    mine = select(Like.liked_id).where(Like.liker_id == user_id)
    where = (
        (Like.liked_id == user_id)
        & Like.kind.in_(POSITIVE)
        & Like.liker_id.not_in(mine)
        & blocked_either_way_clause(user_id, Like.liker_id)
    )
    total = db.session.execute(select(func.count()).select_from(Like).where(where)).scalar_one()
    rows = db.session.execute(
        select(Like.kind, Like.created_at, User)
        .join(User, User.id == Like.liker_id)
        .where(where)
        .order_by(Like.created_at.desc(), Like.liker_id.desc())
        .offset((page - 1) * page_count)
        .limit(page_count)
    ).all()
    items = [
        {"liker": peer_summary(user), "kind": kind, "liked_at": format_wire_datetime(at)}
        for kind, at, user in rows
    ]
    return {"total": int(total), "list": items, "has_next": page * page_count < total}


def unmatch(user_id: int, peer_id: int) -> dict[str, Any]:
    """End the match with ``peer_id`` for both (idempotent). The caller's like becomes a pass, so
    the two do not match again unless the caller likes again."""

    def work() -> bool:
        db.session.execute(
            select(User.id).where(User.id.in_([user_id, peer_id])).order_by(User.id).with_for_update()
        ).all()
        ended = ending.end_match(user_id, peer_id)
        mine = db.session.get(Like, (user_id, peer_id), populate_existing=True)
        if mine is not None and mine.kind != KIND_PASS:
            mine.kind = KIND_PASS
        return ended

    return {"peer_id": peer_id, "unmatched": transactions.write(work, what="unmatch")}
