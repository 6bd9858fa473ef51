"""JSON schemas of the profile area's ``data`` objects (profiles, photos, labels, visits, hot list).

One home per area for what the OpenAPI document shows; the services never read these.
"""

from __future__ import annotations

from typing import Any

from wsgi_app.services.profile.profiles import PROFILE_FIELDS

PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": list(PROFILE_FIELDS),
    "properties": {
        "user_id": {"type": "integer"},
        "nickname": {"type": ["string", "null"]},
        "birthday": {"type": ["string", "null"], "format": "date"},
        "gender": {"type": "integer", "enum": [0, 1, 2]},
        "avatar": {"type": ["string", "null"]},
        "height": {"type": ["integer", "null"]},
        "sexual": {"type": "integer"},
        "education": {"type": "integer"},
        "salary": {"type": ["integer", "null"]},
        "emotion": {"type": "integer"},
        "phone": {"type": "string", "description": "only when showing yourself"},
    },
}
PRESENCE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "null when either of you hides presence (POST /api/user/privacy)",
    "required": ["online", "last_active_at", "active_minutes_ago"],
    "properties": {
        "online": {"type": "boolean", "description": "active in the last 2.5 minutes"},
        "last_active_at": {"type": ["string", "null"]},
        "active_minutes_ago": {"type": ["integer", "null"]},
    },
}
# The contract fixes the profile's fields (phone only for yourself); the rest of your
# own account (e-mail, visibility, VIP) is read through ``/api/user/settings``.
SELF_PROFILE_SCHEMA: dict[str, Any] = PROFILE_SCHEMA
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "email", "authority", "is_vip", "vip_expires_at"],
    "properties": {
        "user_id": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "authority": {
            "type": "integer",
            "enum": [0, 1, 2],
            "description": "who sees your profile: 0 nobody, 1 everyone, 2 people you chat with",
        },
        "is_vip": {"type": "boolean"},
        "vip_expires_at": {"type": ["string", "null"], "description": "YYYY-MM-DD HH:MM:SS, UTC"},
    },
}
PHOTO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["photo_id", "url", "content_type", "size_bytes", "width", "height", "position"],
    "properties": {
        "photo_id": {"type": "integer"},
        "url": {"type": "string", "description": "path under which the image is served"},
        "content_type": {"type": "string"},
        "size_bytes": {"type": "integer"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "position": {"type": "integer", "description": "0 is first"},
        "created_at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
    },
}
PHOTO_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "list", "total"],
    "properties": {
        "user_id": {"type": "integer"},
        "list": {"type": "array", "items": PHOTO_SCHEMA},
        "total": {"type": "integer"},
    },
}
LABEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["label_id", "name", "category"],
    "properties": {
        "label_id": {"type": "integer"},
        "name": {"type": "string"},
        "category": {"type": "string"},
    },
}
LABEL_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "list": {"type": "array", "items": LABEL_SCHEMA},
        "has_next": {"type": "boolean"},
    },
}
USER_LABELS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "list"],
    "properties": {"user_id": {"type": "integer"}, "list": {"type": "array", "items": LABEL_SCHEMA}},
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total_visitors", "total_visits", "new_visitors"],
    "properties": {
        "total_visitors": {"type": "integer", "description": "distinct people who viewed you"},
        "total_visits": {"type": "integer", "description": "all their views together"},
        "new_visitors": {"type": "integer", "description": "visitors since you last marked the list read"},
    },
}
VISITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["visitor", "visit_count", "first_visited_at", "last_visited_at", "is_new"],
    "properties": {
        "visitor": PROFILE_SCHEMA,
        "visit_count": {"type": "integer"},
        "first_visited_at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
        "last_visited_at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
        "is_new": {"type": "boolean"},
    },
}
VISITOR_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "list": {"type": "array", "items": VISITOR_SCHEMA},
        "has_next": {"type": "boolean"},
    },
}
HOT_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "list": {"type": "array", "items": PROFILE_SCHEMA},
        "has_next": {"type": "boolean"},
    },
}
