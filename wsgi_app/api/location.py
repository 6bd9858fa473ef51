"""``/api/location``: report your position (stored snapped to a ~1 km grid, never returned)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.location import positions as location

bp = Blueprint("location", __name__, url_prefix="/api/location")

LATLNG = Param(
    "latlng", required=True, max_length=64, error=LATLNG_INVALID, description='"lat,lng" in decimal degrees'
)


@bp.route("/report", methods=["POST"])
@endpoint(
    summary="Report your position for nearby people",
    params=[LATLNG],
    errors=[LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED],
    data_schema={"type": "object", "required": ["stored"], "properties": {"stored": {"type": "boolean"}}},
    description="Snapped to a ~1 km grid before it is stored; coordinates are never returned. "
    "Moves faster than an airliner are rejected (516); changes are rate-limited (429).",
)
def report(caller: UserCaller, latlng: str) -> dict[str, Any]:
    lat, lng = location.parse_latlng(latlng)
    location.report_location(caller.user_id, lat, lng)
    return {"stored": True}
