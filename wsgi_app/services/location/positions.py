"""Users' positions: snapped to a ~1 km grid (:mod:`wsgi_app.services.location.grid`), stored in a row.

Privacy against trilateration (dating apps have leaked exact positions that
way): a reported position is snapped to the centre of its grid cell *before*
it is stored anywhere, so nothing finer than the cell exists on the server.
Distances are computed between cell centres and answered in whole-km bands
(``"< 1 km"``, ``"1 km"``, ``"2 km"``...), coordinates are never returned,
impossible jumps (faster than an airliner) are rejected and position changes
are rate-limited. Every answer about a user is a function of their cell only,
so an attacker moving its own reported position around learns the cell at
best, never a point inside it.

The ``UserLocation`` row is the only copy. Nearby search reads it by grid
cell (:mod:`wsgi_app.services.location.nearby_cells`); every move here, after its
commit, edits the cached cells it leaves and enters in place (into a cell only
when the mover is visible to everyone, as the database read would list them),
so a user who moves leaves the old cell at once and no cell is rebuilt for it;
it also drops the mover's own nearby state
(:mod:`wsgi_app.services.location.nearby_viewer`). Nothing is ever rebuilt as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import BindParameter, bindparam

from wsgi_app import transactions
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.models.user import AUTHORITY_EVERYONE, User
from wsgi_app.services import rate_limit
from wsgi_app.services.location import nearby_cell_edits, nearby_cells, nearby_viewer
from wsgi_app.services.location.grid import (  # noqa: F401  (re-exported: the location vocabulary)
    GRID_KM,
    Cell,
    GridPoint,
    cell_centre,
    cell_of,
    distance_band_km,
    distance_km,
    distance_label,
    snap_to_grid,
)
from wsgi_app.timeutil import utcnow

# Latitudes beyond this are refused (the grid's rows get degenerate near the poles).
MAX_ABS_LAT = 85.0
# A reported move is possible when distance <= speed * elapsed + slack.
MAX_TRAVEL_SPEED_KMH = 1000.0  # faster than any airliner
JUMP_SLACK_KM = 5.0  # GPS noise and grid rounding
# (count, window seconds) defaults; overridable in app config.

_LATLNG_RE = re.compile(
    r"^\s*([+-]?\d{1,3}(?:\.\d{1,12})?)\s*,\s*([+-]?\d{1,3}(?:\.\d{1,12})?)\s*$", re.ASCII
)


def parse_latlng(raw: str) -> tuple[float, float]:
    """``"lat,lng"`` in degrees, or :data:`LATLNG_INVALID` (code 502)."""
    match = _LATLNG_RE.match(raw or "")
    if not match:
        raise ApiError(LATLNG_INVALID, 'latlng: expected "lat,lng" in decimal degrees')
    lat, lng = float(match.group(1)), float(match.group(2))
    if not -MAX_ABS_LAT <= lat <= MAX_ABS_LAT:
        raise ApiError(LATLNG_INVALID, f"latlng: latitude must be within +-{MAX_ABS_LAT:g}")
    if not -180.0 <= lng <= 180.0:
        raise ApiError(LATLNG_INVALID, "latlng: longitude must be within +-180")
    return lat, lng


def current_position(user_id: int) -> GridPoint | None:
    row = db.session.get(UserLocation, user_id)
    return GridPoint(row.lat, row.lng) if row is not None else None


def _check_jump(previous: GridPoint, previous_at: datetime, new_point: GridPoint, now: datetime) -> None:
    elapsed_hours = max(0.0, (now - previous_at).total_seconds()) / 3600.0
    moved_km = distance_km(previous, new_point)
    if moved_km > MAX_TRAVEL_SPEED_KMH * elapsed_hours + JUMP_SLACK_KM:
        raise ApiError(
            LOCATION_REJECTED,
            f"moved {moved_km:.0f} km in {elapsed_hours * 60:.0f} min: faster than possible",
        )


def change_limits() -> Sequence[tuple[int, int]]:
    limits: Sequence[tuple[int, int]] = current_app.config["LOCATION_CHANGE_LIMITS"]
    return limits


# The user's stored position and whether nearby lists may show them, in one read (Core).
_USER: BindParameter[int] = bindparam("user")
_POSITION_AND_AUTHORITY = (
    db.select(UserLocation.lat, UserLocation.lng, UserLocation.updated_at, User.authority)
    .select_from(User)
    .outerjoin(UserLocation, UserLocation.user_id == User.id)
    .where(User.id == _USER)
)


def report_location(user_id: int, lat: float, lng: float) -> GridPoint:
    """Store the user's position (snapped), after the jump check and the change limit.

    Commits, then moves the user between the cached old and new cells in place (only
    into a cell when they are visible to everyone). Reporting the cell already stored
    only refreshes its time and costs nothing against the limit.
    """
    point = snap_to_grid(lat, lng)
    now = utcnow()
    new_cell = cell_of(point.lat, point.lng)
    found = db.session.connection().execute(_POSITION_AND_AUTHORITY, {"user": user_id}).first()
    listed = found is not None and found.authority == AUTHORITY_EVERYONE
    stored = GridPoint(found.lat, found.lng) if found is not None and found.lat is not None else None
    stored_at: datetime = found.updated_at if found is not None and stored is not None else now
    if stored is not None and snap_to_grid(stored.lat, stored.lng) == point:
        was_stale = stored_at < now - timedelta(days=nearby_cells.LOCATION_MAX_AGE_DAYS)
        transactions.write_statement(
            db.update(UserLocation).where(UserLocation.user_id == user_id).values(updated_at=now),
            what="location refresh",
        )
        if was_stale and listed:  # cached cells left them out
            nearby_cell_edits.move(user_id, [], [new_cell])
        return point
    left = []
    if stored is not None:
        _check_jump(stored, stored_at, point, now)
        left.append(cell_of(stored.lat, stored.lng))
    rate_limit.enforce(redis_client(), f"loc:change:{user_id}", change_limits(), "location changes")
    if stored is not None:  # one UPDATE by id (the profile cache drops this user's card after the commit)
        transactions.write_statement(
            db.update(UserLocation)
            .where(UserLocation.user_id == user_id)
            .values(lat=point.lat, lng=point.lng, updated_at=now),
            what="location",
        )
    else:

        def store() -> None:
            current = db.session.get(UserLocation, user_id)
            if current is None:
                db.session.add(UserLocation(user_id=user_id, lat=point.lat, lng=point.lng, updated_at=now))
            else:
                current.lat, current.lng, current.updated_at = point.lat, point.lng, now

        transactions.write(store, what="location")
    nearby_cell_edits.move(user_id, left, [new_cell] if listed else [])
    nearby_viewer.forget([user_id])
    return point


def report_location_on_sign_in(user_id: int, lat: float, lng: float) -> bool:
    """Like :func:`report_location`, but a refused move (jump, limit) never fails the sign-in:
    the old position simply stays. Returns whether the position was stored."""
    try:
        report_location(user_id, lat, lng)
    except ApiError as err:
        if err.spec not in (LOCATION_REJECTED, RATE_LIMITED):
            raise
        db.session.rollback()
        return False
    return True


def forget_location(user_id: int) -> None:
    """Remove the user's position (the caller commits) and drop their cached cell.

    Used by account deletion. If the caller's commit fails afterwards, the row
    stays and the cell is simply read again from it.
    """
    row = db.session.get(UserLocation, user_id)
    if row is None:
        return
    db.session.delete(row)
    db.session.flush()
    nearby_cells.invalidate([cell_of(row.lat, row.lng)])
    nearby_viewer.forget([user_id])
