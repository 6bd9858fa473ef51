"""Signs of life on the native side: each signed-in request may mark its person active.

At most once a minute per person and process it asks Redis (``SET NX EX``,
coalesced in the loop's shared pipeline); the one process that wins writes
``users.last_active_at`` (:func:`wsgi_app.services.events.presence.record_active`)
on a one-thread pool of its own: never on the request pools, so a presence write
neither delays a request nor counts in the edge's admission estimate of their
queues. All of it runs as a background task: the request never waits for it,
and a failure (or a backlog beyond :data:`MAX_QUEUED_WRITES`: skipped) only
costs a stale "active N minutes ago". The per-process memory of who was seen is
bounded (:data:`MAX_REMEMBERED`; cleared when full).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from flask import Flask

from wsgi_app.services.events import presence

if TYPE_CHECKING:
    from async_handlers.base import NativeContext

log = logging.getLogger("datingtoday.presence")
MAX_REMEMBERED = 200_000
MAX_QUEUED_WRITES = 1000

_seen: dict[int, float] = {}
_tasks: set[asyncio.Task[None]] = set()
_writer: ThreadPoolExecutor | None = None
_queued = 0


def _write_pool() -> ThreadPoolExecutor:
    global _writer
    if _writer is None:
        _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="presence")
    return _writer


def _record_active(app: Flask, user_id: int) -> None:
    with app.app_context():
        presence.record_active(user_id)


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
    global _queued
    if _queued >= MAX_QUEUED_WRITES:
        return  # a backlog: presence is best effort
    key = presence.write_gate_key(user_id)
    _queued += 1
    try:
        (won,) = await context.redis_batch.run([("SET", key, "1", "NX", "EX", presence.WRITE_INTERVAL_SECS)])
        if won:
            await context.run_in_pool(_record_active, context.flask_app, user_id, executor=_write_pool())
    except Exception as err:  # noqa: BLE001 (presence is best effort; the request is answered)
        log.warning("presence of user %s not recorded: %s", user_id, type(err).__name__)
    finally:
        _queued -= 1
