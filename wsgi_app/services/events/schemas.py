"""JSON schemas of the event stream (``GET /api/events/poll``): the answer and every event's payload.

One home for what the OpenAPI document shows of the stream; ``docs/api.md`` describes the same.
"""

from __future__ import annotations

from typing import Any

from wsgi_app.services.chat.schemas import MESSAGE_SCHEMA, PEER_SUMMARY_SCHEMA


def _object(required: list[str], properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "description": description}


EVENT_PAYLOADS: dict[str, dict[str, Any]] = {
    "message": MESSAGE_SCHEMA,  # a new message to you, as GET /api/chat/poll answers it
    "read": _object(
        ["peer_id", "up_to_msg_id", "read_at"],
        {"peer_id": {"type": "integer"}, "up_to_msg_id": {"type": "integer"}, "read_at": {"type": "string"}},
        "peer_id read your messages up to up_to_msg_id (only while both have read receipts on)",
    ),
    "recall": _object(
        ["msg_id", "peer_id"],
        {"msg_id": {"type": "integer"}, "peer_id": {"type": "integer", "description": "the other side"}},
        "a message of the conversation with peer_id was taken back: remove it (to both sides, "
        "and to the sender's other devices)",
    ),
    "visit": _object(
        ["new_visitors"],
        {
            "new_visitors": {"type": "integer", "description": "unread visitors now"},
            "visitor": PEER_SUMMARY_SCHEMA,  # who: VIP only, absent otherwise
        },
        "someone became a new visitor of your profile; visitor (who) only for VIP",
    ),
    "vip": _object(
        ["is_vip", "vip_expires_at", "reason"],
        {
            "is_vip": {"type": "boolean"},
            "vip_expires_at": {"type": ["string", "null"]},
            "reason": {"type": "string", "enum": ["purchase", "expired"]},
        },
        "your VIP status changed",
    ),
    "like": _object(
        ["liker", "kind"],
        {"liker": PEER_SUMMARY_SCHEMA, "kind": {"type": "string", "enum": ["like", "super"]}},
        "someone liked you (VIP only: others learn of a like only when it is mutual, as a match)",
    ),
    "match": _object(
        ["peer", "matched_at"],
        {"peer": PEER_SUMMARY_SCHEMA, "matched_at": {"type": "string"}},
        "you and peer like each other",
    ),
    "unmatch": _object(
        ["peer_id"], {"peer_id": {"type": "integer"}}, "remove peer_id from your matches (no reason is given)"
    ),
    "typing": _object(
        ["peer_id", "state", "expires_in"],
        {
            "peer_id": {"type": "integer"},
            "state": {"type": "string", "enum": ["start", "stop"]},
            "expires_in": {"type": "integer", "description": "seconds: show it no longer without a refresh"},
        },
        "ephemeral (id null): peer_id is typing to you, or stopped",
    ),
    "presence": _object(
        ["user_id", "online"],
        {"user_id": {"type": "integer"}, "online": {"type": "boolean"}},
        "ephemeral (id null): a match or conversation partner came online",
    ),
}

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "at", "payload"],
    "properties": {
        "id": {
            "type": ["integer", "null"],
            "description": "grows per person; null for an ephemeral event (typing, presence)",
        },
        "type": {"type": "string", "enum": sorted(EVENT_PAYLOADS)},
        "at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
        "payload": {"oneOf": list(EVENT_PAYLOADS.values()), "description": "by type (see each)"},
    },
}
EVENTS_POLL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events", "cursor", "has_more"],
    "properties": {
        "events": {"type": "array", "items": EVENT_SCHEMA, "description": "durable ones oldest first"},
        "cursor": {"type": "integer", "description": "send it with the next poll"},
        "has_more": {"type": "boolean", "description": "more are waiting: poll again at once"},
    },
}
