"""Declarations of the endpoints served natively on the event loop (``async_handlers``).

The handlers take their :class:`~wsgi_app.declarations.EndpointSpec` from here
and the OpenAPI builder lists :data:`NATIVE_ENDPOINTS`, so the builder needs no
import of Tornado code. Invariant: every path here is mounted by
``async_handlers.NATIVE_HANDLERS`` with the same specs (``tests/test_architecture.py``
checks it), and this module imports neither Flask nor Tornado.

:data:`NATIVE_FAST_PATHS` are endpoints Flask declares and documents (one
declaration, shared from here) that a native handler also serves for the
requests it can answer identically: ``POST /api/chat/send`` without an upload.
A ``multipart/form-data`` request to such a path goes to Flask
(``tornado_server.py`` routes it by its ``Content-Type``), so media sends keep
one implementation.
"""

from __future__ import annotations

from wsgi_app.declarations import PAGINATION, EndpointSpec
from wsgi_app.errors import (
    BLOCKED,
    CONFLICT,
    EVENTS_RESYNC,
    LATLNG_INVALID,
    LOCATION_REJECTED,
    NOT_AN_IMAGE,
    PARAM_INVALID,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    UNSUPPORTED_MEDIA,
    USER_NOT_FOUND,
)
from wsgi_app.params import Param
from wsgi_app.services.chat import messages as chat
from wsgi_app.services.chat import schemas as chat_schemas
from wsgi_app.services.events import schemas as event_schemas
from wsgi_app.services.events import stream as event_stream
from wsgi_app.services.location import nearby
from wsgi_app.services.location import schemas as location_schemas

SERVER_TIME = EndpointSpec(
    summary="Server clock (seconds since the epoch), to calibrate request timestamps",
    auth="none",
    data_schema={
        "type": "object",
        "required": ["timestamp"],
        "properties": {"timestamp": {"type": "number"}},
    },
)

POLL_PARAMS = (
    Param(
        "cursor",
        "integer",
        minimum=0,
        description="the highest msg_id you have; omit it once to get the current cursor at once",
    ),
    Param("limit", "integer", default=50, minimum=1, maximum=chat.MAX_POLL_BATCH),
)
CHAT_POLL = EndpointSpec(
    summary="Wait for new messages (long-poll)",
    params=POLL_PARAMS,
    errors=(PARAM_INVALID,),
    data_schema=chat_schemas.POLL_SCHEMA,
    description="Returns at once with messages to you newer than cursor (oldest first, "
    "at most limit); otherwise waits up to about 50 s and returns an empty list with the "
    "same cursor. Loss-free and exactly once across reconnects, restarts and processes "
    "as long as the client sends back the cursor it got.",
    tags=("chat",),
)

EVENTS_POLL_PARAMS = (
    Param(
        "cursor",
        "integer",
        minimum=0,
        description="the highest event id you have (per device); omit it once to get the current cursor",
    ),
    Param("limit", "integer", default=50, minimum=1, maximum=event_stream.MAX_EVENT_BATCH),
)
EVENTS_POLL = EndpointSpec(
    summary="Wait for your events (messages, receipts, recalls, visits, VIP, likes, matches, typing...)",
    params=EVENTS_POLL_PARAMS,
    errors=(PARAM_INVALID, EVENTS_RESYNC),
    data_schema=event_schemas.EVENTS_POLL_SCHEMA,
    description="Returns at once with your durable events after cursor (oldest first, at most limit), "
    "otherwise waits up to about 50 s for one, or for an ephemeral event (typing, presence: id null, "
    "never stored, delivered only to a waiting poll). Each device keeps its own cursor; every durable "
    "event is answered exactly once per cursor across reconnects, process restarts and Redis outages. "
    "A cursor older than the kept events (EVENT_RETENTION_DAYS, 7) gets 533 events_resync: rebuild "
    "state and poll without a cursor. See docs/api.md, Events.",
    tags=("events",),
)

NEARBY_PARAMS = (
    Param(
        "latlng",
        max_length=64,
        error=LATLNG_INVALID,
        description='your position "lat,lng" (stored snapped to ~1 km); default: the last one reported',
    ),
    Param(
        "radius",
        "integer",
        default=nearby.DEFAULT_RADIUS_KM,
        minimum=1,
        maximum=nearby.MAX_RADIUS_KM,
        description="km",
    ),
    *PAGINATION,
)
NEARBY_LIST = EndpointSpec(
    summary="People near you, nearest first",
    params=NEARBY_PARAMS,
    errors=(LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED),
    data_schema=location_schemas.NEARBY_SCHEMA,
    description="Only people visible to everyone, never yourself or anyone blocked either "
    "way. Distances are whole-km bands between ~1 km grid cells; no coordinates are "
    f"returned. At most {nearby.MAX_CANDIDATES} people are considered per query.",
    tags=("nearby",),
)

SEND_PARAMS = (
    Param("peerId", "integer", required=True, minimum=1, description="the other person"),
    Param(
        "clientMsgId",
        required=True,
        pattern=chat.CLIENT_MSG_ID_PATTERN,
        description="chosen by the client, unique per sender: a retried send is stored once",
    ),
    Param("kind", default="text", enum=chat.MESSAGE_KINDS),
    Param("content", max_length=chat.MAX_TEXT_CHARS, description="the text (or a caption)"),
    Param("file", "file", description="voice: AMR/AAC/MP3/M4A/Ogg/WAV; image: JPEG/PNG/WebP/GIF"),
)
CHAT_SEND = EndpointSpec(
    summary="Send a text, voice or image message",
    params=SEND_PARAMS,
    errors=(
        PARAM_INVALID,
        USER_NOT_FOUND,
        BLOCKED,
        CONFLICT,
        RATE_LIMITED,
        PAYLOAD_TOO_LARGE,
        NOT_AN_IMAGE,
        UNSUPPORTED_MEDIA,
    ),
    data_schema=chat_schemas.SEND_SCHEMA,
    description="Stored first, then announced to the recipient's long-polls. Refused (512) when "
    "either user blocked the other. Sending again with the same clientMsgId returns the stored "
    "message with duplicate=true (409 if that id was used for a different recipient or kind). "
    "Voice clips are parsed (415 unless the whole file is audio); media count against a daily "
    "quota per sender (CHAT_MEDIA_DAILY_QUOTA_BYTES, 100 MiB; 429 beyond).",
)

# (path, HTTP method, declaration) of every native endpoint; paths are Tornado route patterns.
NATIVE_ENDPOINTS: tuple[tuple[str, str, EndpointSpec], ...] = (
    ("/api/time", "GET", SERVER_TIME),
    ("/api/chat/poll", "GET", CHAT_POLL),
    ("/api/events/poll", "GET", EVENTS_POLL),
    ("/api/user/nearby/list", "GET", NEARBY_LIST),
)
NATIVE_PATHS = frozenset(path for path, _, _ in NATIVE_ENDPOINTS)

# Flask endpoints (declared and documented there) that a native handler serves too, for every
# request but a multipart/form-data one (an upload: Flask's).
NATIVE_FAST_PATHS: tuple[tuple[str, str, EndpointSpec], ...] = (("/api/chat/send", "POST", CHAT_SEND),)
FLASK_UPLOAD_PATHS = frozenset(path for path, _, _ in NATIVE_FAST_PATHS)
