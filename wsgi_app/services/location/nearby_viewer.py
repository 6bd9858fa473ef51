"""A nearby caller's own state, cached for the event loop: their cell and who they never see.

Sans-I/O apart from :func:`forget` (the writers' side, sync Redis). Invariants:

- The state is ``nearby:viewer:{id}`` = ``"{version}|{row}:{col}|{id},{id}..."``: the
  caller's grid cell (never coordinates) and the ids excluded from their lists
  (themselves, everyone blocked either way). It is a copy of database rows,
  written by the nearby query after it read them, with ``NEARBY_CELL_CACHE_SECS``.
- Every write that changes those rows (a position stored or removed, a block
  or unblock) calls :func:`forget` after its commit, which bumps the user's
  ``nearby:viewer-v:{id}`` counter. A state counts only when the version it was
  written with equals the counter as read with it, and a reader reads the
  counter *before* the rows it caches, so a copy read before a write's commit
  but stored after its :func:`forget` is never used (no delete/set race).
- Blocks are checked from this state alone (the page's cards carry visibility,
  cell and freshness, not blocks: :mod:`wsgi_app.services.location.nearby_cards`),
  so every committed block change must bump: the block services call
  :func:`forget`, and the profile cache's session listener does it for any
  flushed ``Block`` (:mod:`wsgi_app.services.profile.cache`). A page that finds a
  listed person gone drops the state (see ``async_handlers.nearby_query``).
- Nothing is cached on the embedded in-process Redis stand-in (other processes,
  such as the CLI, never see it): same switch as the cell cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wsgi_app.extensions import redis_client
from wsgi_app.services.location.grid import Cell
from wsgi_app.services.location.nearby_cells import cache_secs
from wsgi_app.transactions import collect_on_commit

STATE_KEY_PREFIX = "nearby:viewer:"
VERSION_KEY_PREFIX = "nearby:viewer-v:"
# Outlives any state by far, so a state never survives its version counter.
VERSION_TTL_SECS = 86400


@dataclass(frozen=True)
class Viewer:
    """Who asks: their grid cell and the ids never listed to them (themselves, blocks)."""

    user_id: int
    cell: Cell
    excluded: frozenset[int]


def state_key(user_id: int) -> str:
    return f"{STATE_KEY_PREFIX}{user_id}"


def version_key(user_id: int) -> str:
    return f"{VERSION_KEY_PREFIX}{user_id}"


def read_commands(user_id: int) -> list[tuple[Any, ...]]:
    """Redis commands whose answers :func:`decode` takes: the state and its version counter."""
    return [("MGET", state_key(user_id), version_key(user_id))]


def encode(viewer: Viewer, version: str | None) -> str:
    excluded = ",".join(map(str, sorted(viewer.excluded)))
    return f"{version or 0}|{viewer.cell.row}:{viewer.cell.col}|{excluded}"


def decode(user_id: int, state: str | None, version: str | None) -> Viewer | None:
    """The cached state if it was written at the current version, else None (read the rows)."""
    if state is None:
        return None
    written_at, _, rest = state.partition("|")
    if written_at != (version or "0"):
        return None
    cell_text, _, excluded_text = rest.partition("|")
    row, _, col = cell_text.partition(":")
    excluded = frozenset(int(part) for part in excluded_text.split(",")) if excluded_text else frozenset()
    return Viewer(user_id, Cell(int(row), int(col)), excluded | {user_id})


def store_command(viewer: Viewer, version: str | None, ttl_secs: int) -> tuple[Any, ...]:
    return ("SET", state_key(viewer.user_id), encode(viewer, version), "EX", ttl_secs)


def forget_after_commit(user_ids: Iterable[int]) -> None:
    """Say, inside the transaction that changes these users' blocks, that their cached states
    stop counting after its commit (:func:`forget`, once per transaction)."""
    collect_on_commit("nearby-viewer", user_ids, forget)


def forget(user_ids: Iterable[int], config: Mapping[str, Any] | None = None) -> None:
    """After a commit that changed these users' position or blocks: their cached states stop counting."""
    ids = set(user_ids)
    if not ids or not cache_secs(config):
        return
    with redis_client().pipeline(transaction=False) as pipe:
        for user_id in ids:
            pipe.incr(version_key(user_id))
            pipe.expire(version_key(user_id), VERSION_TTL_SECS)
        pipe.execute()
