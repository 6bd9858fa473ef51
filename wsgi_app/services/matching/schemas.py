"""JSON schemas of ``/api/like`` and ``/api/match`` (what the OpenAPI document shows)."""

from __future__ import annotations

from typing import Any

from wsgi_app.services.chat.schemas import PEER_SUMMARY_SCHEMA
from wsgi_app.services.matching.likes import KINDS
from wsgi_app.services.profile.schemas import PRESENCE_SCHEMA

DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["peer_id", "kind", "matched", "likes_left", "super_likes_left"],
    "properties": {
        "peer_id": {"type": "integer"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "matched": {"type": "boolean", "description": "you like each other (a match event went to both)"},
        "likes_left": {"type": "integer", "description": "today (UTC)"},
        "super_likes_left": {"type": "integer", "description": "today (UTC)"},
    },
}
RECEIVED_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "has_next": {"type": "boolean"},
        "list": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["liker", "kind", "liked_at"],
                "properties": {
                    "liker": PEER_SUMMARY_SCHEMA,
                    "kind": {"type": "string", "enum": ["like", "super"]},
                    "liked_at": {"type": "string"},
                },
            },
        },
    },
}
MATCH_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "has_next": {"type": "boolean"},
        "list": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["peer", "matched_at", "presence"],
                "properties": {
                    "peer": PEER_SUMMARY_SCHEMA,
                    "matched_at": {"type": "string"},
                    "presence": PRESENCE_SCHEMA,
                },
            },
        },
    },
}
UNMATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["peer_id", "unmatched"],
    "properties": {
        "peer_id": {"type": "integer"},
        "unmatched": {"type": "boolean", "description": "false when you were not matched"},
    },
}
