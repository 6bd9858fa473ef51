"""Native Tornado handlers: the routes served on the event loop, not through WSGI.

``native_routes(context)`` is what ``tornado_server.py`` mounts ahead of the
Flask container; every other path goes to Flask.
"""

from __future__ import annotations

from typing import Any

from async_handlers.base import NativeContext, ServerTimeHandler


def native_routes(context: NativeContext) -> list[tuple[str, type, dict[str, Any]]]:
    kwargs = {"context": context}
    return [
        (r"/api/time", ServerTimeHandler, kwargs),
    ]
