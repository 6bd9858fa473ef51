"""The hot list: people ranked by popularity, served from a Redis-cached ranking.

Popularity = distinct visitors received in the last ``HOT_LIST_WINDOW_DAYS``
days (visits are folded per pair, so one row is one visitor); ties go to the
most recently visited (or, never visited, most recently registered), then the
higher id. The global ranking (the top ``HOT_LIST_SIZE`` ids of profiles
visible to everyone) is cached for ``HOT_LIST_CACHE_SECS`` under a generation
number (refreshed by one caller while others serve the stale copy);
:func:`invalidate` bumps the generation so the next read recomputes.
Every read filters the cached ids through the database for this viewer
(``visibility.listable_clause``: never yourself, never hidden, never blocked
either way), so someone who hides their profile, blocks you or deletes their
account vanishes at once, even from a ranking cached before.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func

from wsgi_app.extensions import db, redis_client
from wsgi_app.models.social import Visit
from wsgi_app.models.user import AUTHORITY_EVERYONE, User
from wsgi_app.services.profile.profiles import profile_data
from wsgi_app.services.profile.visibility import listable_clause
from wsgi_app.timeutil import epoch_seconds, utcnow

GENERATION_KEY = "hot:generation"
RANKING_KEY = "hot:ranking:{generation}"
REFRESH_LOCK_SECS = 30


def compute_ranking() -> list[int]:
    """The global ranking from the database, most popular first."""
    since = utcnow() - timedelta(days=current_app.config["HOT_LIST_WINDOW_DAYS"])
    scores = (
        db.select(
            Visit.visited_id.label("user_id"),
            func.count(Visit.id).label("visitors"),
            func.max(Visit.last_visited_at).label("latest"),
        )
        .where(Visit.last_visited_at >= since, Visit.visitor_id != Visit.visited_id)
        .group_by(Visit.visited_id)
        .subquery()
    )
    query = (
        db.select(User.id)
        .outerjoin(scores, scores.c.user_id == User.id)
        .where(User.authority == AUTHORITY_EVERYONE)
        .order_by(
            func.coalesce(scores.c.visitors, 0).desc(),
            func.coalesce(scores.c.latest, User.created_at).desc(),
            User.id.desc(),
        )
        .limit(current_app.config["HOT_LIST_SIZE"])
    )
    return list(db.session.execute(query).scalars())


def cached_ranking() -> list[int]:
    """The ranking of the current generation.

    Fresh for ``HOT_LIST_CACHE_SECS``; after that the entry is stale but kept as
    long again: one caller (holding a short ``SET NX`` lock) recomputes while
    the others keep serving the stale copy, so an expiry never makes every
    worker run the ranking query at once. A new generation starts empty.
    """
    redis = redis_client()
    ttl = current_app.config["HOT_LIST_CACHE_SECS"]
    key = RANKING_KEY.format(generation=redis.get(GENERATION_KEY) or "0")
    cached = redis.get(key)
    if cached is not None:
        entry = json.loads(cached)
        stale_ids = [int(user_id) for user_id in entry["ids"]]
        if epoch_seconds() - entry["computed_at"] < ttl:
            return stale_ids
        if not redis.set(f"{key}:refreshing", "1", nx=True, ex=REFRESH_LOCK_SECS):
            return stale_ids  # someone else is refreshing it
    ranking = compute_ranking()
    redis.set(key, json.dumps({"computed_at": epoch_seconds(), "ids": ranking}), ex=2 * ttl)
    redis.delete(f"{key}:refreshing")
    return ranking


def invalidate() -> None:
    """Make the next read recompute (a profile became hidden or visible, an account went)."""
    redis = redis_client()
    old_generation = redis.get(GENERATION_KEY) or "0"
    redis.incr(GENERATION_KEY)
    redis.delete(RANKING_KEY.format(generation=old_generation))


def hot_page(viewer_id: int, page: int, page_count: int) -> dict[str, Any]:
    ranking = cached_ranking()
    visible: set[int] = set()
    if ranking:
        visible = set(
            db.session.execute(
                db.select(User.id).where(User.id.in_(ranking), listable_clause(viewer_id))
            ).scalars()
        )
    ordered = [user_id for user_id in ranking if user_id in visible]
    start = (page - 1) * page_count
    page_ids = ordered[start : start + page_count]
    users = {u.id: u for u in db.session.execute(db.select(User).where(User.id.in_(page_ids))).scalars()}
    return {
        "total": len(ordered),
        "list": [profile_data(users[user_id]) for user_id in page_ids if user_id in users],
        "has_next": start + page_count < len(ordered),
    }
