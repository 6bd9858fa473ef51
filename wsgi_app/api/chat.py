"""``/api/chat`` (send, history, mark read) and ``/api/contacts`` (conversation list).

Waiting for new messages is the native long-poll ``GET /api/chat/poll``
(:mod:`async_handlers.chat_poll`), not a Flask view. ``POST /api/chat/send`` is
declared here (from :data:`wsgi_app.native_endpoints.CHAT_SEND`) and serves
uploads (``multipart/form-data``); every other send is answered by the native
:mod:`async_handlers.chat_send` with the same declaration and service call.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, send_file

from wsgi_app import native_endpoints
from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import BLOCKED, OBJECT_NOT_FOUND, RATE_LIMITED, RECALL_WINDOW_PASSED, USER_NOT_FOUND
from wsgi_app.openapi.document import MEDIA_TYPES_KEY, RAW_BODY_MARKER
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.chat import contacts as chat_contacts
from wsgi_app.services.chat import media as chat_media
from wsgi_app.services.chat import messages as chat
from wsgi_app.services.chat import recall as chat_recall
from wsgi_app.services.chat import schemas as chat_schemas
from wsgi_app.services.chat import typing as chat_typing
from wsgi_app.services.profile.photos import IMAGE_FORMATS

bp = Blueprint("chat", __name__, url_prefix="/api/chat")
contacts_bp = Blueprint("contacts", __name__, url_prefix="/api/contacts")

IMAGE_CONTENT_TYPES = [content_type for _, content_type in IMAGE_FORMATS.values()]
PEER_ID = Param("peerId", "integer", required=True, minimum=1, description="the other person")


@bp.route("/send", methods=["POST"])
@endpoint(
    summary=native_endpoints.CHAT_SEND.summary,
    params=native_endpoints.CHAT_SEND.params,
    errors=native_endpoints.CHAT_SEND.errors,
    data_schema=native_endpoints.CHAT_SEND.data_schema,
    description=native_endpoints.CHAT_SEND.description,
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
    data_schema=chat_schemas.HISTORY_SCHEMA,
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
    description="While both of you have read receipts on (POST /api/user/privacy), the sender sees "
    "read_at on those messages in its history and gets a read event (GET /api/events/poll) at once; "
    "a person with them off neither sends nor sees them.",
)
def mark_read(caller: UserCaller, peer_id: int, up_to_id: int | None = None) -> dict[str, Any]:
    return chat_contacts.mark_read(caller.user_id, peer_id, up_to_id)


@bp.route("/recall", methods=["POST"])
@endpoint(
    summary="Take back a message you sent (within 2 minutes)",
    params=[Param("msgId", "integer", required=True, minimum=1, description="the message's msg_id")],
    errors=[OBJECT_NOT_FOUND, RECALL_WINDOW_PASSED],
    data_schema={
        "type": "object",
        "required": ["msg_id", "peer_id"],
        "properties": {"msg_id": {"type": "integer"}, "peer_id": {"type": "integer"}},
    },
    description="The message disappears from both sides' history, the contacts list and chat/poll; "
    "its media file is deleted; both sides (every device) get a recall event. 511 for a message "
    "that is not yours (or already recalled), 534 after 2 minutes.",
)
def recall(caller: UserCaller, msg_id: int) -> dict[str, Any]:
    return chat_recall.recall(caller.user_id, msg_id)


TYPING_SCHEMA = {
    "type": "object",
    "required": ["peer_id", "state", "expires_in"],
    "properties": {
        "peer_id": {"type": "integer"},
        "state": {"type": "string", "enum": list(chat_typing.STATES)},
        "expires_in": {"type": "integer", "description": "seconds the indicator shows without a refresh"},
    },
}


@bp.route("/typing", methods=["POST"])
@endpoint(
    summary="Tell the peer you started or stopped typing (a typing event, never stored)",
    params=[PEER_ID, Param("state", required=True, enum=chat_typing.STATES)],
    errors=[USER_NOT_FOUND, BLOCKED, RATE_LIMITED],
    data_schema=TYPING_SCHEMA,
    description="Delivered at once to the peer's waiting event polls (best effort). At most one start "
    "(and one stop) per conversation every 3 s (429 with Retry-After beyond): send start again every "
    "few seconds while typing; the peer shows it for 15 s after the last start unless a stop comes.",
)
def typing_send(caller: UserCaller, peer_id: int, state: str) -> dict[str, Any]:
    return chat_typing.send_typing(caller.user_id, peer_id, state)


@bp.route("/typing", methods=["GET"])
@endpoint(
    summary="Whether the peer is typing to you now",
    params=[PEER_ID],
    errors=[USER_NOT_FOUND, BLOCKED],
    data_schema={
        "type": "object",
        "required": ["peer_id", "typing", "expires_in"],
        "properties": {
            "peer_id": {"type": "integer"},
            "typing": {"type": "boolean"},
            "expires_in": {"type": "integer"},
        },
    },
    description="For a device that connects while the peer types; expires 15 s after the last start.",
)
def typing_state(caller: UserCaller, peer_id: int) -> dict[str, Any]:
    return chat_typing.is_typing(caller.user_id, peer_id)


@contacts_bp.route("/list", methods=["GET"])
@endpoint(
    summary="People you have talked with: last message and your unread count, newest first",
    params=list(PAGINATION),
    data_schema=chat_schemas.CONTACTS_SCHEMA,
)
def list_contacts(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    return chat.contacts_page(caller.user_id, page, page_count)
