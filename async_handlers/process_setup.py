"""Process-wide choices ``tornado_server.py`` makes once, before it serves: the listen
backlog, the CPU its threads run on, and the garbage collector's view of the startup heap.

Invariants:

- Each function is called once per process, from ``tornado_server.main``/``serve``,
  never from a request; none of them changes what any request answers.
- ``freeze_startup_objects`` runs after the app, its services and the listening
  socket exist and before the first request: everything it freezes lives as long
  as the process does (modules, the Flask app, SQLAlchemy's mappers and pools).
  Objects created later are collected as usual.
"""

from __future__ import annotations

import gc
import logging
import os

log = logging.getLogger("datingtoday.server")

MAX_LISTEN_BACKLOG = 65535
DEFAULT_LISTEN_BACKLOG = 1024
SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"


def listen_backlog() -> int:
    """``net.core.somaxconn`` (the kernel caps any larger value to it), read once at start-up.

    Tornado's default of 128 refused bursts of reconnecting polls."""
    try:
        with open(SOMAXCONN_PATH) as f:
            return min(int(f.read().strip()), MAX_LISTEN_BACKLOG)
    except (OSError, ValueError):
        return DEFAULT_LISTEN_BACKLOG


def pin_to_one_cpu(setting: str, port: int) -> int | None:
    """Keep every thread of this process on one CPU; returns it (None: not pinned).

    A process runs Python on one core at a time anyway (the GIL); left free, its
    event loop and pool threads hand the GIL to each other across cores, which
    cost 15-20% more CPU per request and a lower rate (bench/crud_profile.md). ``auto``
    picks the CPU from the port, so consecutive ports (supervisord's processes)
    spread over the CPUs this process may use."""
    if setting == "off" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    cpu = allowed[port % len(allowed)] if setting == "auto" else int(setting)
    if cpu not in allowed:
        log.warning(
            "CPU_AFFINITY=%s: CPU %d is not one this process may use %s; not pinned", setting, cpu, allowed
        )
        return None
    for thread_id in os.listdir("/proc/self/task"):  # threads started before now as well
        os.sched_setaffinity(int(thread_id), {cpu})
    return cpu


def freeze_startup_objects() -> int:
    """Move every object alive now out of the collector's reach; returns how many.

    The startup heap (Flask, SQLAlchemy, the app's modules: some hundreds of
    thousands of objects) is never garbage, yet each full collection walked it:
    under CRUD load a full collection paused every thread of the process for up to
    90 ms, which was the whole p99 tail of the database-bound endpoints
    (bench/crud_profile.md). Frozen, a full collection walks only what requests
    and waiting polls created since. One collection first, so garbage of the
    start-up is freed, not frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
