"""Native Tornado handlers: the routes served on the event loop, not through WSGI.

``NATIVE_ENDPOINTS`` lists them; ``tornado_server.py`` mounts ``native_routes(context)``
ahead of the Flask container (every other path goes to Flask), calls
``start_native_services(context)`` once its loop runs (the chat wake-up
listener, and the shutdown hook that answers waiting polls), and the OpenAPI
document reads each handler's ``endpoint_specs`` through ``native_endpoint_specs()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from async_handlers.base import NativeApiHandler, NativeContext, ServerTimeHandler
from async_handlers.chat_poll import ChatPollHandler
from async_handlers.nearby import NearbyListHandler
from async_handlers.waiters import WakeListener, drain_waiters
from wsgi_app.api.endpoint import EndpointSpec

NATIVE_ENDPOINTS: list[tuple[str, type[NativeApiHandler]]] = [
    ("/api/time", ServerTimeHandler),
    ("/api/chat/poll", ChatPollHandler),
    ("/api/user/nearby/list", NearbyListHandler),
]


def native_routes(context: NativeContext) -> list[tuple[str, type, dict[str, Any]]]:
    return [(path, handler, {"context": context}) for path, handler in NATIVE_ENDPOINTS]


def native_endpoint_specs() -> Iterator[tuple[str, str, EndpointSpec]]:
    """``(path, HTTP method, spec)`` for every native endpoint."""
    for path, handler in NATIVE_ENDPOINTS:
        for method, spec in handler.endpoint_specs.items():
            yield path, method, spec


def start_native_services(context: NativeContext) -> None:
    """Start the process's one wake-up listener (needs the running loop) and register
    the shutdown hook that answers every waiting poll, then stops the listener."""
    if context.listener is not None:
        return
    listener = WakeListener(context.redis, context.waiters)
    context.listener = listener
    listener.start()

    async def stop_chat_waiters() -> None:
        await drain_waiters(context.waiters)
        await listener.stop()

    context.shutdown_hooks.append(stop_chat_waiters)
