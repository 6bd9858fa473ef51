"""JSON schemas of the nearby list's ``data``.

One home per area for what the OpenAPI document shows; the services never read these.
"""

from __future__ import annotations

from typing import Any

from wsgi_app.services.profile.schemas import PROFILE_SCHEMA

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
