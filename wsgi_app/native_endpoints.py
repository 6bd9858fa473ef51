"""Declarations of the endpoints served natively on the event loop (``async_handlers``).

The handlers take their :class:`~wsgi_app.declarations.EndpointSpec` from here
and the OpenAPI builder lists :data:`NATIVE_ENDPOINTS`, so the builder needs no
import of Tornado code. Invariant: every path here is mounted by
``async_handlers.NATIVE_HANDLERS`` with the same specs (``tests/test_architecture.py``
checks it), and this module imports neither Flask nor Tornado.
"""

from __future__ import annotations

from wsgi_app.declarations import PAGINATION, EndpointSpec
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, PARAM_INVALID, RATE_LIMITED
from wsgi_app.params import Param
from wsgi_app.services.chat import messages as chat
from wsgi_app.services.chat import schemas as chat_schemas
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

# (path, HTTP method, declaration) of every native endpoint; paths are Tornado route patterns.
NATIVE_ENDPOINTS: tuple[tuple[str, str, EndpointSpec], ...] = (
    ("/api/time", "GET", SERVER_TIME),
    ("/api/chat/poll", "GET", CHAT_POLL),
    ("/api/user/nearby/list", "GET", NEARBY_LIST),
)
NATIVE_PATHS = frozenset(path for path, _, _ in NATIVE_ENDPOINTS)
