"""Nearby people: the blocking halves of ``GET /api/user/nearby/list``.

The native handler (:mod:`async_handlers.nearby`) runs these on the worker
pool and the geo search itself on the event loop (``redis.asyncio``):

1. :func:`prepare_query` - rate limit, store a reported ``latlng``, return the
   caller's grid cell (healing the geo index if Redis lost it);
2. GEOSEARCH around that cell, nearest first, bounded radius and ``COUNT``;
3. :func:`build_page` - keep only people the caller may list (visible to
   everyone, not blocked either way, not the caller, position fresh), attach
   profile summaries and distance bands, paginate.

Distances are between grid-cell centres and answered in whole-km bands; no
coordinates ever leave the server (see :mod:`wsgi_app.services.location`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.models.user import User
from wsgi_app.services import location, rate_limit
from wsgi_app.services.location import GEO_KEY, GridPoint
from wsgi_app.services.profiles import PROFILE_SCHEMA, profile_data
from wsgi_app.services.visibility import listable_clause
from wsgi_app.timeutil import utcnow

DEFAULT_RADIUS_KM = 20
MAX_RADIUS_KM = 100
MAX_CANDIDATES = 500  # GEOSEARCH COUNT: bounds the work of one query in dense areas
LOCATION_MAX_AGE_DAYS = 30
REINDEX_LOCK_SECS = 60
DEFAULT_NEARBY_QUERY_LIMITS: list[tuple[int, int]] = [(30, 60), (600, 86400)]

NEARBY_ITEM_SCHEMA: dict[str, Any] = {
    **PROFILE_SCHEMA,
    "required": [*PROFILE_SCHEMA["required"], "distance_km", "distance"],
    "properties": {
        **PROFILE_SCHEMA["properties"],
        "distance_km": {"type": "integer", "description": "whole km between ~1 km grid cells; 0: < 1 km"},
        "distance": {"type": "string", "description": 'display band: "< 1 km", "1 km", "2 km"...'},
    },
}
NEARBY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next", "located"],
    "properties": {
        "total": {"type": "integer"},
        "list": {"type": "array", "items": NEARBY_ITEM_SCHEMA, "description": "nearest first"},
        "has_next": {"type": "boolean"},
        "located": {"type": "boolean", "description": "false: report latlng first, the list is empty"},
    },
}


def _heal_geo_index(user_id: int, point: GridPoint) -> None:
    """Redis restarted empty (or lost this entry): rebuild from the rows, once per minute."""
    client = redis_client()
    if client.zscore(GEO_KEY, str(user_id)) is not None:
        return
    if not client.exists(GEO_KEY) and client.set(f"{GEO_KEY}:reindexing", "1", nx=True, ex=REINDEX_LOCK_SECS):
        location.reindex_all_locations()
    else:
        client.geoadd(GEO_KEY, (point.lng, point.lat, str(user_id)))


def prepare_query(user_id: int, latlng: str | None) -> GridPoint | None:
    """Rate-limit the query, store ``latlng`` if given; the caller's cell (None: unknown)."""
    limits = current_app.config.get("NEARBY_QUERY_LIMITS", DEFAULT_NEARBY_QUERY_LIMITS)
    rate_limit.enforce(redis_client(), f"nearby:query:{user_id}", limits, "nearby queries")
    if latlng is not None:
        lat, lng = location.parse_latlng(latlng)
        return location.report_location(user_id, lat, lng)
    point = location.current_position(user_id)
    if point is not None:
        _heal_geo_index(user_id, point)
    return point


def build_page(viewer_id: int, hits: list[tuple[str, float]], page: int, page_count: int) -> dict[str, Any]:
    """Listable people among the GEOSEARCH ``(member, km)`` hits, nearest first, one page."""
    distances: dict[int, float] = {}
    for member, km in hits:
        if str(member).isdigit():
            distances.setdefault(int(member), float(km))
    fresh_since = utcnow() - timedelta(days=LOCATION_MAX_AGE_DAYS)
    users = (
        db.session.execute(
            db.select(User)
            .join(UserLocation, UserLocation.user_id == User.id)
            .where(
                User.id.in_(list(distances)),
                UserLocation.updated_at >= fresh_since,
                listable_clause(viewer_id),
            )
        ).scalars()
        if distances
        else []
    )
    ranked = sorted(
        ((location.distance_band_km(distances[u.id]), u.id, u) for u in users), key=lambda t: t[:2]
    )
    start = (page - 1) * page_count
    items = []
    for band_km, _, user in ranked[start : start + page_count]:
        item = profile_data(user)
        item["distance_km"] = band_km
        item["distance"] = location.distance_label(band_km)
        items.append(item)
    return {
        "total": len(ranked),
        "list": items,
        "has_next": start + page_count < len(ranked),
        "located": True,
    }


def not_located() -> dict[str, Any]:
    return {"total": 0, "list": [], "has_next": False, "located": False}
