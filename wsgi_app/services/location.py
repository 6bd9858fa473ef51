"""Users' positions: snapped to a ~1 km grid, stored in a row and in a Redis geo index.

Privacy against trilateration (dating apps have leaked exact positions that
way): a reported position is snapped to the centre of its grid cell *before*
it is stored anywhere, so nothing finer than the cell exists on the server.
Distances are computed between cell centres and answered in whole-km bands
(``"< 1 km"``, ``"1 km"``, ``"2 km"``...), coordinates are never returned,
impossible jumps (faster than an airliner) are rejected and position changes
are rate-limited. Every answer about a user is a function of their cell only,
so an attacker moving its own reported position around learns the cell at
best, never a point inside it.

The ``UserLocation`` row is the durable copy; the Redis geo index (``GEO_KEY``)
is rebuilt from the rows by :func:`reindex_all_locations` (after a Redis
restart, or by the demo seeder).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from wsgi_app import transactions
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.services import rate_limit
from wsgi_app.timeutil import utcnow

GEO_KEY = "geo:user_locations"
GRID_KM = 1.0
KM_PER_DEGREE_LAT = 111.32
EARTH_RADIUS_KM = 6371.0088
# Redis geo indexes cover latitudes up to +-85.05112878.
MAX_ABS_LAT = 85.0
# A reported move is possible when distance <= speed * elapsed + slack.
MAX_TRAVEL_SPEED_KMH = 1000.0  # faster than any airliner
JUMP_SLACK_KM = 5.0  # GPS noise and grid rounding
# (count, window seconds) defaults; overridable in app config.
DEFAULT_LOCATION_CHANGE_LIMITS: list[tuple[int, int]] = [(20, 3600), (100, 86400)]
REINDEX_BATCH_SIZE = 1000

_LATLNG_RE = re.compile(r"^\s*([+-]?\d{1,3}(?:\.\d{1,12})?)\s*,\s*([+-]?\d{1,3}(?:\.\d{1,12})?)\s*$")


@dataclass(frozen=True)
class GridPoint:
    """The centre of a grid cell: the only form in which positions are kept."""

    lat: float
    lng: float


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


def snap_to_grid(lat: float, lng: float, grid_km: float = GRID_KM) -> GridPoint:
    """The centre of the ~``grid_km`` cell holding (lat, lng).

    Rows are ``grid_km`` tall; each row is cut into a whole number of cells
    about ``grid_km`` wide at that row's latitude.
    """
    lat_step = grid_km / KM_PER_DEGREE_LAT
    row = math.floor(lat / lat_step)
    centre_lat = (row + 0.5) * lat_step
    row_circumference_km = 360.0 * KM_PER_DEGREE_LAT * math.cos(math.radians(centre_lat))
    cells_in_row = max(1, math.floor(row_circumference_km / grid_km))
    lng_step = 360.0 / cells_in_row
    column = min(math.floor((lng + 180.0) / lng_step), cells_in_row - 1)
    centre_lng = -180.0 + (column + 0.5) * lng_step
    return GridPoint(round(centre_lat, 7), round(centre_lng, 7))


def distance_km(a: GridPoint, b: GridPoint) -> float:
    """Great-circle distance (haversine) between two points."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlng = lat2 - lat1, math.radians(b.lng - a.lng)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_band_km(km: float) -> int:
    """Whole km between two cell centres; 0 means "< 1 km" (the same cell)."""
    return int(math.floor(km + 0.5))


def distance_label(band_km: int) -> str:
    return "< 1 km" if band_km < 1 else f"{band_km} km"


def current_position(user_id: int) -> GridPoint | None:
    row = db.session.get(UserLocation, user_id)
    return GridPoint(row.lat, row.lng) if row is not None else None


def _check_jump(previous: UserLocation, new_point: GridPoint, now: datetime) -> None:
    elapsed_hours = max(0.0, (now - previous.updated_at).total_seconds()) / 3600.0
    moved_km = distance_km(GridPoint(previous.lat, previous.lng), new_point)
    if moved_km > MAX_TRAVEL_SPEED_KMH * elapsed_hours + JUMP_SLACK_KM:
        raise ApiError(
            LOCATION_REJECTED,
            f"moved {moved_km:.0f} km in {elapsed_hours * 60:.0f} min: faster than possible",
        )


def change_limits() -> Sequence[tuple[int, int]]:
    return current_app.config.get("LOCATION_CHANGE_LIMITS", DEFAULT_LOCATION_CHANGE_LIMITS)


def report_location(user_id: int, lat: float, lng: float) -> GridPoint:
    """Store the user's position (snapped), after the jump check and the change limit.

    Commits, then updates the geo index. Reporting the cell already stored only
    refreshes its time and costs nothing against the limit.
    """
    point = snap_to_grid(lat, lng)
    now = utcnow()
    row = db.session.get(UserLocation, user_id)
    if row is not None and snap_to_grid(row.lat, row.lng) == point:
        transactions.write_statement(
            db.update(UserLocation).where(UserLocation.user_id == user_id).values(updated_at=now),
            what="location refresh",
        )
        return point
    if row is not None:
        _check_jump(row, point, now)
    rate_limit.enforce(redis_client(), f"loc:change:{user_id}", change_limits(), "location changes")

    def store() -> None:
        current = db.session.get(UserLocation, user_id)
        if current is None:
            db.session.add(UserLocation(user_id=user_id, lat=point.lat, lng=point.lng, updated_at=now))
        else:
            current.lat, current.lng, current.updated_at = point.lat, point.lng, now

    transactions.write(store, what="location")
    redis_client().geoadd(GEO_KEY, (point.lng, point.lat, str(user_id)))
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
    """Remove the user's position from the table and the geo index (the caller commits).

    Used by account deletion. If the caller's commit fails afterwards, the geo
    entry is gone while the row stays: :func:`reindex_all_locations` restores it.
    """
    db.session.execute(db.delete(UserLocation).where(UserLocation.user_id == user_id))
    redis_client().zrem(GEO_KEY, str(user_id))


def reindex_all_locations() -> int:
    """Rebuild the Redis geo index from the ``UserLocation`` rows; returns how many.

    Built under a temporary key and renamed over the live one, so readers never
    see a half-built index.
    """
    client = redis_client()
    building_key = f"{GEO_KEY}:rebuild"
    client.delete(building_key)
    count = 0
    query = db.select(UserLocation.user_id, UserLocation.lat, UserLocation.lng).order_by(UserLocation.user_id)
    batch: list[float | str] = []
    for user_id, lat, lng in db.session.execute(query):
        batch.extend((lng, lat, str(user_id)))
        count += 1
        if len(batch) >= 3 * REINDEX_BATCH_SIZE:
            client.geoadd(building_key, batch)
            batch = []
    if batch:
        client.geoadd(building_key, batch)
    if count:
        client.rename(building_key, GEO_KEY)
    else:
        client.delete(GEO_KEY)
    return count
