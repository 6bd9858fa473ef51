"""Native Tornado handlers: the routes served on the event loop, not through WSGI.

``NATIVE_HANDLERS`` maps each path declared in :data:`wsgi_app.native_endpoints.NATIVE_ENDPOINTS`
to its handler; ``tornado_server.py`` mounts ``native_routes(context)``
ahead of the Flask container (every other path goes to Flask), calls
``start_native_services(context)`` once its loop runs (the chat wake-up
listener, and the shutdown hook that answers waiting polls). Invariant: this
package imports ``wsgi_app`` (services, declarations, errors), never ``wsgi_app.api``,
and nothing under ``wsgi_app`` imports it.
"""

from __future__ import annotations

from typing import Any

from async_handlers.base import NativeApiHandler, NativeContext, ServerTimeHandler
from async_handlers.chat_poll import ChatPollHandler
from async_handlers.chat_send import ChatSendHandler
from async_handlers.events_poll import EventsPollHandler
from async_handlers.nearby import NearbyListHandler
from async_handlers.waiters import WakeListener, drain_waiters

NATIVE_HANDLERS: list[tuple[str, type[NativeApiHandler]]] = [
    ("/api/time", ServerTimeHandler),
    ("/api/chat/poll", ChatPollHandler),
    ("/api/events/poll", EventsPollHandler),
    ("/api/user/nearby/list", NearbyListHandler),
    # Also a Flask route: only non-multipart sends come here (see native_endpoints.NATIVE_FAST_PATHS).
    ("/api/chat/send", ChatSendHandler),
]


def native_routes(context: NativeContext) -> list[tuple[str, type, dict[str, Any]]]:
    return [(path, handler, {"context": context}) for path, handler in NATIVE_HANDLERS]


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
