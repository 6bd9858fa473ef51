"""``/api/chat`` (send, history, mark read) and ``/api/contacts`` (conversation list).

Waiting for new messages is the native long-poll ``GET /api/chat/poll``
(:mod:`async_handlers.chat_poll`), not a Flask view.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, send_file

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import (
    BLOCKED,
    CONFLICT,
    NOT_AN_IMAGE,
    OBJECT_NOT_FOUND,
    PARAM_INVALID,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    UNSUPPORTED_MEDIA,
    USER_NOT_FOUND,
)
from wsgi_app.openapi.document import MEDIA_TYPES_KEY, RAW_BODY_MARKER
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.chat import contacts as chat_contacts
from wsgi_app.services.chat import media as chat_media
from wsgi_app.services.chat import messages as chat
from wsgi_app.services.profile.photos import IMAGE_FORMATS

bp = Blueprint("chat", __name__, url_prefix="/api/chat")
contacts_bp = Blueprint("contacts", __name__, url_prefix="/api/contacts")

IMAGE_CONTENT_TYPES = [content_type for _, content_type in IMAGE_FORMATS.values()]
PEER_ID = Param("peerId", "integer", required=True, minimum=1, description="the other person")
SEND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "duplicate"],
    "properties": {
        "message": chat.MESSAGE_SCHEMA,
        "duplicate": {"type": "boolean", "description": "true when this clientMsgId was already stored"},
    },
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["list", "has_more", "next_before_id"],
    "properties": {
        "list": {"type": "array", "items": chat.MESSAGE_SCHEMA},
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
                    "peer": chat_contacts.PEER_SUMMARY_SCHEMA,
                    "last_message": {"anyOf": [chat.MESSAGE_SCHEMA, {"type": "null"}]},
                    "unread_count": {"type": "integer"},
                },
            },
        },
    },
}


@bp.route("/send", methods=["POST"])
@endpoint(
    summary="Send a text, voice or image message",
    params=[
        PEER_ID,
        Param(
            "clientMsgId",
            required=True,
            pattern=chat.CLIENT_MSG_ID_PATTERN,
            description="chosen by the client, unique per sender: a retried send is stored once",
        ),
        Param("kind", default="text", enum=chat.MESSAGE_KINDS),
        Param("content", max_length=chat.MAX_TEXT_CHARS, description="the text (or a caption)"),
        Param("file", "file", description="voice: AMR/AAC/MP3/M4A/Ogg/WAV; image: JPEG/PNG/WebP/GIF"),
    ],
    errors=[
        PARAM_INVALID,
        USER_NOT_FOUND,
        BLOCKED,
        CONFLICT,
        RATE_LIMITED,
        PAYLOAD_TOO_LARGE,
        NOT_AN_IMAGE,
        UNSUPPORTED_MEDIA,
    ],
    data_schema=SEND_SCHEMA,
    description="Stored first, then announced to the recipient's long-polls. Refused (512) when "
    "either user blocked the other. Sending again with the same clientMsgId returns the stored "
    "message with duplicate=true (409 if that id was used for a different recipient or kind). "
    "Voice clips are parsed (415 unless the whole file is audio); media count against a daily "
    "quota per sender (CHAT_MEDIA_DAILY_QUOTA_BYTES, 100 MiB; 429 beyond).",
)
def send(
    caller: UserCaller, peer_id: int, client_msg_id: str, kind: str, content: str | None = None
) -> dict[str, Any]:
    upload = request.files.get("file")
    sent = chat.send_message(
        caller.user_id, peer_id, client_msg_id, kind, content, upload.stream if upload else None
    )
    return {"message": sent.message, "duplicate": sent.duplicate}


@bp.route("/media", methods=["GET"])
@endpoint(
    summary="Read the file of a voice or image message (only its sender and recipient)",
    params=[Param("name", required=True, max_length=64, description="the file name in media_url")],
    errors=[OBJECT_NOT_FOUND, BLOCKED],
    data_schema={
        RAW_BODY_MARKER: True,
        MEDIA_TYPES_KEY: sorted({*chat_media.MEDIA_CONTENT_TYPES.values(), *IMAGE_CONTENT_TYPES}),
        "type": "string",
        "format": "binary",
    },
    description="The message's media_url. 511 for anyone but the two people of the conversation "
    "(and for a missing file), 512 once either blocked the other. Not cacheable by shared caches.",
)
def media(caller: UserCaller, name: str) -> Response:
    path, content_type = chat_media.readable_media(caller.user_id, name)
    accel_path = current_app.config["CHAT_MEDIA_ACCEL_PATH"]
    if accel_path:  # nginx sends the bytes from its internal location
        response = Response(status=200, content_type=content_type)
        response.headers["X-Accel-Redirect"] = accel_path.rstrip("/") + "/" + name
    else:
        response = send_file(path, mimetype=content_type, conditional=False, max_age=None)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/history", methods=["GET"])
@endpoint(
    summary="Messages of a conversation, newest first, by cursor",
    params=[
        PEER_ID,
        Param("beforeId", "integer", minimum=1, description="only messages older than this msg_id"),
        Param("pageCount", "integer", default=20, minimum=1, maximum=chat.MAX_PAGE_SIZE),
    ],
    errors=[USER_NOT_FOUND, BLOCKED],
    data_schema=HISTORY_SCHEMA,
)
def history(
    caller: UserCaller, peer_id: int, page_count: int, before_id: int | None = None
) -> dict[str, Any]:
    return chat.history(caller.user_id, peer_id, before_id, page_count)


@bp.route("/read", methods=["POST"])
@endpoint(
    summary="Mark the messages a peer sent you as read (read receipts)",
    params=[PEER_ID, Param("upToId", "integer", minimum=1, description="default: all of them")],
    data_schema={
        "type": "object",
        "required": ["peer_id", "marked_count", "unread_count"],
        "properties": {
            "peer_id": {"type": "integer"},
            "marked_count": {"type": "integer"},
            "unread_count": {"type": "integer"},
        },
    },
    description="The sender sees read_at on those messages in its history.",
)
def mark_read(caller: UserCaller, peer_id: int, up_to_id: int | None = None) -> dict[str, Any]:
    return chat_contacts.mark_read(caller.user_id, peer_id, up_to_id)


@contacts_bp.route("/list", methods=["GET"])
@endpoint(
    summary="People you have talked with: last message and your unread count, newest first",
    params=list(PAGINATION),
    data_schema=CONTACTS_SCHEMA,
)
def list_contacts(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    return chat.contacts_page(caller.user_id, page, page_count)
