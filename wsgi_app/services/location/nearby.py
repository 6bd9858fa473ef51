"""Nearby people: ``GET /api/user/nearby/list``, the blocking steps and the page itself.

The native handler's query (:mod:`async_handlers.nearby_query`) runs on the
event loop and calls these:

1. rate limit, then the caller's cell and who never appears (the caller, blocks
   either way): from the cached state (:mod:`wsgi_app.services.location.nearby_viewer`)
   or, on a miss or with a reported ``latlng``, :func:`locate_viewer` (blocking);
2. :class:`nearby_cells.CellRanking` - cells ringed outward from the caller,
   band by band, until ``MAX_CANDIDATES`` people or the radius are reached; a
   page is a slice of that ranking by (band, cell, id);
3. the page's cards (:mod:`wsgi_app.services.location.nearby_cards`: cached
   copies of the listed columns, the person's cell, visibility and freshness,
   never older than a committed change): anyone failing the check (hidden,
   moved, stale, gone) makes their cell stale, and the ranking is done once
   more without it.

Distances are between grid-cell centres and answered in whole-km bands; no
coordinates ever leave the server (see :mod:`wsgi_app.services.location.positions`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, bindparam, or_

from wsgi_app.extensions import db
from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Block
from wsgi_app.services.location import positions as location
from wsgi_app.services.location.grid import cell_of
from wsgi_app.services.location.nearby_viewer import Viewer

DEFAULT_RADIUS_KM = 20
MAX_RADIUS_KM = 100
MAX_CANDIDATES = 500  # people ranked per query: bounds the work and the depth of paging


# Built once (its cache key is memoised) and run with Core (no ORM compile step).
_VIEWER: BindParameter[int] = bindparam("viewer")
_POSITION_AND_BLOCKS = (
    db.select(UserLocation.lat, UserLocation.lng, Block.blocker_id, Block.blocked_id)
    .select_from(UserLocation)
    .outerjoin(Block, or_(Block.blocker_id == _VIEWER, Block.blocked_id == _VIEWER))
    .where(UserLocation.user_id == _VIEWER)
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


def locate_viewer(user_id: int, latlng: str | None) -> Viewer | None:
    """Store ``latlng`` if given, then the caller's cell and exclusions from the database
    (None while their position is unknown). Runs inside an app context."""
    if latlng is not None:
        lat, lng = location.parse_latlng(latlng)
        location.report_location(user_id, lat, lng)
    position, excluded = _position_and_excluded(user_id)
    return None if position is None else Viewer(user_id, cell_of(*position), excluded)


def not_located() -> dict[str, Any]:
    return {"total": 0, "list": [], "has_next": False, "located": False}
