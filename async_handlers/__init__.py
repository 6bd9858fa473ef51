"""Native Tornado handlers: the routes served on the event loop, not through WSGI.

``NATIVE_HANDLERS`` maps each path declared in :data:`wsgi_app.native_endpoints.NATIVE_ENDPOINTS`
to its handler; ``tornado_server.py`` mounts ``native_routes(context)``
ahead of the Flask container (every other path goes to Flask), calls
``start_native_services(context)`` once its loop runs (the chat wake-up
listener, which follows a Sentinel-managed primary and voids the profile cache
when the primary moves, and the shutdown hook that answers waiting polls). Invariant: this
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
from wsgi_app.redis_client import RedisTarget, primary_locator
from wsgi_app.services.auth.core import reset_epoch_commands
from wsgi_app.services.profile import cache as profile_cache

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
    target = RedisTarget.from_config(context.flask_app.config)
    listener = WakeListener(context.redis, context.waiters, primary_locator(target))

    async def void_profile_cache() -> None:
        # A cache invalidation the old primary acknowledged may not have reached the new one:
        # a new epoch voids every row cached there (wsgi_app.services.profile.cache).
        await context.redis.incr(profile_cache.EPOCH_KEY)

    async def refuse_lost_nonces() -> None:
        # Nonces the old primary stored may be gone: requests signed before now are refused
        # (the same epoch rule as an emptied Redis, wsgi_app.services.auth.core).
        async with context.redis.pipeline(transaction=False) as pipe:
            for command in reset_epoch_commands():
                pipe.execute_command(*command)
            await pipe.execute()

    listener.primary.on_primary_moved.append(void_profile_cache)
    listener.primary.on_primary_moved.append(refuse_lost_nonces)
    context.listener = listener
    listener.start()

    async def stop_chat_waiters() -> None:
        await drain_waiters(context.waiters)
        await listener.stop()

    context.shutdown_hooks.append(stop_chat_waiters)
