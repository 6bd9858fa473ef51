"""Nearby people: ``GET /api/user/nearby/list``, the blocking steps and the page itself.

The native handler's query (:mod:`async_handlers.nearby_query`) runs on the
event loop and calls these:

1. rate limit, then the caller's cell and who never appears (the caller, blocks
   either way): from the cached state (:mod:`wsgi_app.services.location.nearby_viewer`)
   or, on a miss or with a reported ``latlng``, :func:`locate_viewer` (blocking);
2. :class:`nearby_cells.CellRanking` - cells ringed outward from the caller,
   band by band, until ``MAX_CANDIDATES`` people or the radius are reached; a
   page is a slice of that ranking by (band, cell, id);
3. :func:`page_rows` (blocking, on an engine connection: no app context, no
   session, no ORM) - one query for the page's profiles (the listed columns
   only) that re-checks every rule (visible to everyone, not blocked, fresh,
   still in that cell), then :func:`assemble_page`: anyone failing the check
   makes their cell stale, and the ranking is done once more without it.

Distances are between grid-cell centres and answered in whole-km bands; no
coordinates ever leave the server (see :mod:`wsgi_app.services.location.positions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, or_
from sqlalchemy.engine import Dialect, Engine

from wsgi_app.extensions import db
from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Block
from wsgi_app.models.user import User
from wsgi_app.services.location import positions as location
from wsgi_app.services.location.grid import Cell, cell_of
from wsgi_app.services.location.nearby_cells import LOCATION_MAX_AGE_DAYS
from wsgi_app.services.location.nearby_viewer import Viewer
from wsgi_app.services.profile.profiles import PROFILE_FIELDS
from wsgi_app.services.profile.visibility import listable_clause
from wsgi_app.timeutil import utcnow

DEFAULT_RADIUS_KM = 20
MAX_RADIUS_KM = 100
MAX_CANDIDATES = 500  # people ranked per query: bounds the work and the depth of paging
# The columns of a list card, in PROFILE_FIELDS order ("user_id" is User.id).
CARD_COLUMNS = [User.id if name == "user_id" else getattr(User, name) for name in PROFILE_FIELDS]


@dataclass
class PageResult:
    page: dict[str, Any]
    stale_cells: set[Cell] = field(default_factory=set)


# Statements built once (their cache keys are memoised) and run with Core (no ORM compile
# step): per page only parameters change.
_VIEWER: BindParameter[int] = bindparam("viewer")
_POSITION_AND_BLOCKS = (
    db.select(UserLocation.lat, UserLocation.lng, Block.blocker_id, Block.blocked_id)
    .select_from(UserLocation)
    .outerjoin(Block, or_(Block.blocker_id == _VIEWER, Block.blocked_id == _VIEWER))
    .where(UserLocation.user_id == _VIEWER)
)


@lru_cache(maxsize=128)
def _page_cards(count: int) -> Select[Any]:
    """The cards of ``count`` people (``id_0``...) who pass every rule, then their lat, lng."""
    return (
        db.select(*CARD_COLUMNS, UserLocation.lat, UserLocation.lng)
        .join(UserLocation, UserLocation.user_id == User.id)
        .where(
            User.id.in_([bindparam(f"id_{index}") for index in range(count)]),
            UserLocation.updated_at >= bindparam("fresh_since"),
            listable_clause(_VIEWER),
        )
    )


@lru_cache(maxsize=128)
def _driver_sql(dialect: Dialect, count: int) -> tuple[str, dict[str, Any]]:
    """:func:`_page_cards` compiled once per size: its SQL and its constant parameters."""
    compiled = _page_cards(count).compile(dialect=dialect)
    return str(compiled), {name: value for name, value in compiled.params.items() if value is not None}


def _position_and_excluded(user_id: int) -> tuple[tuple[float, float] | None, frozenset[int]]:
    """The caller's stored cell centre and everyone blocked either way, in one query."""
    rows = db.session.connection().execute(_POSITION_AND_BLOCKS, {"viewer": user_id}).all()
    if not rows:
        return None, frozenset()
    excluded = {user_id}
    for _, _, blocker, blocked in rows:
        excluded.update(peer for peer in (blocker, blocked) if peer is not None)
    return (rows[0][0], rows[0][1]), frozenset(excluded)


def locate_viewer(user_id: int, latlng: str | None) -> Viewer | None:
    """Store ``latlng`` if given, then the caller's cell and exclusions from the database
    (None while their position is unknown). Runs inside an app context."""
    if latlng is not None:
        lat, lng = location.parse_latlng(latlng)
        location.report_location(user_id, lat, lng)
    position, excluded = _position_and_excluded(user_id)
    return None if position is None else Viewer(user_id, cell_of(*position), excluded)


def page_rows(engine: Engine, viewer_id: int, ids: list[int]) -> list[Any]:
    """The listed columns (then lat, lng) of those of ``ids`` who pass every rule now.

    On MariaDB/PyMySQL (no type processing needed) the statement compiled once per size
    goes straight to the driver (``exec_driver_sql``: no per-call compile step, most of
    SQLAlchemy's cost here); elsewhere (SQLite) it runs as Core."""
    params: dict[str, Any] = {f"id_{index}": user_id for index, user_id in enumerate(ids)}
    params["fresh_since"] = utcnow() - timedelta(days=LOCATION_MAX_AGE_DAYS)
    params["viewer"] = viewer_id
    dialect = engine.dialect
    with engine.connect() as connection:
        if dialect.name in ("mysql", "mariadb") and dialect.driver == "pymysql":
            sql, constants = _driver_sql(dialect, len(ids))
            return list(connection.exec_driver_sql(sql, {**constants, **params}).all())
        return list(connection.execute(_page_cards(len(ids)), params).all())


def _card(row: Any) -> dict[str, Any]:
    item = dict(zip(PROFILE_FIELDS, row, strict=False))
    if item["birthday"] is not None:
        item["birthday"] = item["birthday"].isoformat()
    return item


def assemble_page(
    total: int, chosen: list[tuple[int, int, Cell]], rows: list[Any], start: int, page_count: int
) -> PageResult:
    """The page of the ranked ``chosen`` ``(band, user id, cell)``, nearest first, with the
    cards of :func:`page_rows`. Those without a row or found in another cell (hidden,
    blocked, stale, deleted, moved since their cell was cached) are left out and their
    cells (and a mover's new cell) returned as stale."""
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
    result.page = {"total": total, "list": items, "has_next": start + page_count < total, "located": True}
    return result


def not_located() -> dict[str, Any]:
    return {"total": 0, "list": [], "has_next": False, "located": False}
