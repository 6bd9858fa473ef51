"""Nearby people: ``GET /api/user/nearby/list`` as one blocking call, :func:`find_page`.

The native handler (:mod:`async_handlers.nearby`) runs it on the worker pool in
one job (one database session, one teardown):

1. :func:`prepare_query` - rate limit, store a reported ``latlng``, return the
   caller's grid cell and who never appears (the caller, blocks either way);
2. :func:`nearby_cells.rank` - cells ringed outward from the caller, band by
   band, until ``MAX_CANDIDATES`` people or the radius are reached; a page is a
   slice of that ranking by (band, cell, id);
3. :func:`build_page` - one query for the page's profiles (the listed columns
   only) that re-checks every rule (visible to everyone, not blocked, fresh,
   still in that cell); anyone failing it makes their cell stale, and the
   ranking is done once more without the stale cells.

Distances are between grid-cell centres and answered in whole-km bands; no
coordinates ever leave the server (see :mod:`wsgi_app.services.location.positions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import BindParameter, bindparam, or_

from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Block
from wsgi_app.models.user import User
from wsgi_app.services import rate_limit
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location import positions as location
from wsgi_app.services.location.grid import Cell, cell_of
from wsgi_app.services.location.nearby_cells import LOCATION_MAX_AGE_DAYS
from wsgi_app.services.profile.profiles import PROFILE_FIELDS
from wsgi_app.services.profile.visibility import listable_clause
from wsgi_app.timeutil import utcnow

DEFAULT_RADIUS_KM = 20
MAX_RADIUS_KM = 100
MAX_CANDIDATES = 500  # people ranked per query: bounds the work and the depth of paging
# The columns of a list card, in PROFILE_FIELDS order ("user_id" is User.id).
CARD_COLUMNS = [User.id if name == "user_id" else getattr(User, name) for name in PROFILE_FIELDS]


@dataclass(frozen=True)
class NearbyQuery:
    cell: Cell
    excluded: frozenset[int]  # never listed: the caller and everyone blocked either way


@dataclass
class PageResult:
    page: dict[str, Any]
    stale_cells: set[Cell] = field(default_factory=set)


# Statements built once (their cache keys are memoised) and run on the session's connection
# (Core, no ORM compile step): per page only parameters change.
_VIEWER: BindParameter[int] = bindparam("viewer")
_POSITION_AND_BLOCKS = (
    db.select(UserLocation.lat, UserLocation.lng, Block.blocker_id, Block.blocked_id)
    .select_from(UserLocation)
    .outerjoin(Block, or_(Block.blocker_id == _VIEWER, Block.blocked_id == _VIEWER))
    .where(UserLocation.user_id == _VIEWER)
)
_PAGE_CARDS = (
    db.select(*CARD_COLUMNS, UserLocation.lat, UserLocation.lng)
    .join(UserLocation, UserLocation.user_id == User.id)
    .where(
        User.id.in_(bindparam("ids", expanding=True)),
        UserLocation.updated_at >= bindparam("fresh_since"),
        listable_clause(_VIEWER),
    )
)


def _position_and_excluded(user_id: int) -> tuple[tuple[float, float] | None, frozenset[int]]:
    """The caller's stored cell centre and everyone blocked either way, in one query."""
    rows = db.session.connection().execute(_POSITION_AND_BLOCKS, {"viewer": user_id}).all()
    if not rows:
        return None, frozenset()
    excluded = {user_id}
    for _, _, blocker, blocked in rows:
        excluded.update(peer for peer in (blocker, blocked) if peer is not None)
    return (rows[0][0], rows[0][1]), frozenset(excluded)


def prepare_query(user_id: int, latlng: str | None) -> NearbyQuery | None:
    """Rate-limit the query, store ``latlng`` if given; None while the caller's position is unknown."""
    limits = current_app.config["NEARBY_QUERY_LIMITS"]
    rate_limit.enforce(redis_client(), f"nearby:query:{user_id}", limits, "nearby queries")
    if latlng is not None:
        lat, lng = location.parse_latlng(latlng)
        location.report_location(user_id, lat, lng)
    position, excluded = _position_and_excluded(user_id)
    return None if position is None else NearbyQuery(cell_of(*position), excluded)


def find_page(
    viewer_id: int, latlng: str | None, radius_km: int, page: int, page_count: int
) -> dict[str, Any]:
    """The whole query: one page of the people around the viewer, nearest first."""
    query = prepare_query(viewer_id, latlng)
    if query is None:
        return not_located()
    for attempt in range(2):
        ranked = nearby_cells.rank(query.cell, query.excluded, radius_km, MAX_CANDIDATES)
        result = build_page(viewer_id, ranked, page, page_count)
        if not result.stale_cells or attempt == 1 or not nearby_cells.cache_secs():
            break
        nearby_cells.invalidate(result.stale_cells)
    return result.page


def _card(row: Any) -> dict[str, Any]:
    item = dict(zip(PROFILE_FIELDS, row, strict=False))
    if item["birthday"] is not None:
        item["birthday"] = item["birthday"].isoformat()
    return item


def build_page(viewer_id: int, ranked: list[tuple[int, int, Cell]], page: int, page_count: int) -> PageResult:
    """One page of the ranking ``(band, user id, cell)``, nearest first, with profile cards.

    Everyone on the page is re-checked in the same query; those failing (hidden,
    blocked, stale, deleted, moved since their cell was cached) are left out and
    their cells (and a mover's new cell) returned as stale.
    """
    start = (page - 1) * page_count
    chosen = ranked[start : start + page_count]
    fresh_since = utcnow() - timedelta(days=LOCATION_MAX_AGE_DAYS)
    ids = [user_id for _, user_id, _ in chosen]
    params = {"ids": ids, "fresh_since": fresh_since, "viewer": viewer_id}
    rows = db.session.connection().execute(_PAGE_CARDS, params).all() if chosen else []
    found = {row[0]: row for row in rows}
    result = PageResult(page={})
    items = []
    for band_km, user_id, cell in chosen:
        row = found.get(user_id)
        if row is None or (now_in := cell_of(row[-2], row[-1])) != cell:
            result.stale_cells.add(cell)
            if row is not None:
                result.stale_cells.add(now_in)  # which may be missing them
            continue
        item = _card(row[:-2])
        item["distance_km"] = band_km
        item["distance"] = location.distance_label(band_km)
        items.append(item)
    result.page = {
        "total": len(ranked),
        "list": items,
        "has_next": start + page_count < len(ranked),
        "located": True,
    }
    return result


def not_located() -> dict[str, Any]:
    return {"total": 0, "list": [], "has_next": False, "located": False}
