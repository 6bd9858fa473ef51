"""Signs of life on the native side: each signed-in request may mark its person active.

At most once a minute per person and process it asks Redis (``SET NX EX``,
coalesced in the loop's shared pipeline); the one process that wins writes
``users.last_active_at`` on the write pool
(:func:`wsgi_app.services.events.presence.record_active`). All of it runs as a
background task: the request never waits for it, and a failure only costs a
stale "active N minutes ago". The per-process memory of who was seen is
bounded (:data:`MAX_REMEMBERED`; cleared when full).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from wsgi_app.services.events import presence

if TYPE_CHECKING:
    from async_handlers.base import NativeContext

log = logging.getLogger("datingtoday.presence")
MAX_REMEMBERED = 200_000

_seen: dict[int, float] = {}
_tasks: set[asyncio.Task[None]] = set()


def note_active(context: NativeContext, user_id: int) -> None:
    """Mark ``user_id`` active (cheap when already marked this minute by this process)."""
    now = time.monotonic()
    last = _seen.get(user_id)
    if last is not None and now - last < presence.WRITE_INTERVAL_SECS:
        return
    if len(_seen) >= MAX_REMEMBERED:
        _seen.clear()
    _seen[user_id] = now
    task = asyncio.get_running_loop().create_task(_record(context, user_id))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _record(context: NativeContext, user_id: int) -> None:
    key = presence.write_gate_key(user_id)
    try:
        (won,) = await context.redis_batch.run([("SET", key, "1", "NX", "EX", presence.WRITE_INTERVAL_SECS)])
        if won:
            await context.run_write(presence.record_active, user_id)
    except Exception as err:  # noqa: BLE001 (presence is best effort; the request is answered)
        log.warning("presence of user %s not recorded: %s", user_id, type(err).__name__)
