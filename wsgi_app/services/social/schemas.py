"""JSON schemas of the block and report endpoints' ``data``.

One home per area for what the OpenAPI document shows; the services never read these.
"""

from __future__ import annotations

from typing import Any

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["report_id", "status"],
    "properties": {"report_id": {"type": "integer"}, "status": {"type": "string"}},
}
BLOCK_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "list": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["user_id", "nickname", "avatar", "blocked_at"],
                "properties": {
                    "user_id": {"type": "integer"},
                    "nickname": {"type": ["string", "null"]},
                    "avatar": {"type": ["string", "null"]},
                    "blocked_at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
                },
            },
        },
        "has_next": {"type": "boolean"},
    },
}
BLOCK_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["peer_id", "blocked"],
    "properties": {"peer_id": {"type": "integer"}, "blocked": {"type": "boolean"}},
}
