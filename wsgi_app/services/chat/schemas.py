"""JSON schemas of the chat endpoints' ``data`` (send, history, contacts, the long-poll).

One home per area for what the OpenAPI document shows; the services never read these.
"""

from __future__ import annotations

from typing import Any

from wsgi_app.services.chat.messages import MESSAGE_KINDS

MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["msg_id", "client_msg_id", "sender_id", "recipient_id", "kind", "created_at"],
    "properties": {
        "msg_id": {"type": "integer", "description": "grows with time; the long-poll cursor"},
        "client_msg_id": {"type": "string"},
        "sender_id": {"type": "integer"},
        "recipient_id": {"type": "integer"},
        "kind": {"type": "string", "enum": list(MESSAGE_KINDS)},
        "content": {"type": ["string", "null"], "description": "text, or a caption of a media message"},
        "media_url": {"type": ["string", "null"]},
        "created_at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
        "read_at": {"type": ["string", "null"], "description": "read receipt: when the recipient read it"},
    },
}
PEER_SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "nickname", "avatar", "gender"],
    "properties": {
        "user_id": {"type": "integer"},
        "nickname": {"type": ["string", "null"]},
        "avatar": {"type": ["string", "null"]},
        "gender": {"type": "integer"},
    },
}
SEND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "duplicate"],
    "properties": {
        "message": MESSAGE_SCHEMA,
        "duplicate": {"type": "boolean", "description": "true when this clientMsgId was already stored"},
    },
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["list", "has_more", "next_before_id"],
    "properties": {
        "list": {"type": "array", "items": MESSAGE_SCHEMA},
        "has_more": {"type": "boolean"},
        "next_before_id": {"type": ["integer", "null"], "description": "beforeId for the next page"},
    },
}
CONTACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "has_next": {"type": "boolean"},
        "list": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["peer", "last_message", "unread_count"],
                "properties": {
                    "peer": PEER_SUMMARY_SCHEMA,
                    "last_message": {"anyOf": [MESSAGE_SCHEMA, {"type": "null"}]},
                    "unread_count": {"type": "integer"},
                },
            },
        },
    },
}
POLL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["list", "cursor", "has_more"],
    "properties": {
        "list": {"type": "array", "items": MESSAGE_SCHEMA, "description": "oldest first"},
        "cursor": {"type": "integer", "description": "send it with the next poll"},
        "has_more": {"type": "boolean", "description": "more are waiting: poll again at once"},
    },
}
