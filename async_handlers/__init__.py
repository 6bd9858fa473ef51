"""Native Tornado handlers: the routes served on the event loop, not through WSGI.

``NATIVE_ENDPOINTS`` lists them; ``tornado_server.py`` mounts ``native_routes(context)``
ahead of the Flask container (every other path goes to Flask), and the OpenAPI
document reads each handler's ``endpoint_specs`` through ``native_endpoint_specs()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from async_handlers.base import NativeApiHandler, NativeContext, ServerTimeHandler
from wsgi_app.api.endpoint import EndpointSpec

NATIVE_ENDPOINTS: list[tuple[str, type[NativeApiHandler]]] = [
    ("/api/time", ServerTimeHandler),
]


def native_routes(context: NativeContext) -> list[tuple[str, type, dict[str, Any]]]:
    return [(path, handler, {"context": context}) for path, handler in NATIVE_ENDPOINTS]


def native_endpoint_specs() -> Iterator[tuple[str, str, EndpointSpec]]:
    """``(path, HTTP method, spec)`` for every native endpoint."""
    for path, handler in NATIVE_ENDPOINTS:
        for method, spec in handler.endpoint_specs.items():
            yield path, method, spec
