"""The nearby query on the event loop: ``redis.asyncio`` for everything cached, a thread
only for the database.

Per page, with the caches warm: the rate limit and the caller's state in one
Redis round trip, the cells of each stage of bands in one more (``MGET``, no
sort, O(cells) work in Redis), then ONE pool job that reads the page's cards
on an engine connection (no app context, no session, no ORM), which re-checks
every listed person against the database. Every Redis round trip goes
through the loop's shared pipelines (:mod:`async_handlers.redis_batch`).

Invariants (the rules themselves live in :mod:`wsgi_app.services.location`):

- the database stays the truth: a missing or stale cache entry (caller state,
  cell) is read from it on the pool, and a page whose check finds someone
  gone, hidden, blocked or moved drops those cells and the caller's state and
  ranks once more from fresh reads;
- the caller's cached state is used only at the version read with it
  (:mod:`wsgi_app.services.location.nearby_viewer`), so a move or a block is
  seen by the caller's next query;
- nothing here blocks the loop: the database and the cell loader run on the pool.
"""

from __future__ import annotations

from typing import Any

import redis

from async_handlers.base import NativeContext
from wsgi_app.services import rate_limit
from wsgi_app.services.location import nearby, nearby_cells, nearby_viewer
from wsgi_app.services.location.nearby_viewer import Viewer


async def find_page(
    context: NativeContext, viewer_id: int, latlng: str | None, radius_km: int, page: int, page_count: int
) -> dict[str, Any]:
    """One page of the people around the viewer, nearest first (the endpoint's ``data``)."""
    config = context.flask_app.config
    ttl_secs = nearby_cells.cache_secs(config)
    limits = config.get("NEARBY_QUERY_LIMITS", nearby.DEFAULT_NEARBY_QUERY_LIMITS)
    limit_command = rate_limit.hit_command(f"nearby:query:{viewer_id}", limits)
    cached = bool(ttl_secs) and latlng is None
    commands = [limit_command, *(nearby_viewer.read_commands(viewer_id) if cached else [])]
    try:
        answers = await context.redis_batch.run(commands)
    except redis.exceptions.NoScriptError:  # first use since Redis started: send the script
        answers = await context.redis_batch.run([rate_limit.eval_fallback(limit_command), *commands[1:]])
    rate_limit.raise_if_limited(answers[0], "nearby queries")
    viewer = nearby_viewer.decode(viewer_id, *answers[1]) if cached else None
    if viewer is None:
        viewer = await context.run_blocking(nearby.locate_viewer, viewer_id, latlng)
        if viewer is not None and cached:
            await context.redis_batch.run([nearby_viewer.store_command(viewer, answers[1][1], ttl_secs)])
    if viewer is None:
        return nearby.not_located()
    start = (page - 1) * page_count
    for attempt in range(2):
        ranking = await _rank(context, viewer, radius_km, ttl_secs)
        chosen = ranking.page(start, page_count)
        ids = [user_id for _, user_id, _ in chosen]
        rows = await context.run_in_pool(nearby.page_rows, context.engine, viewer_id, ids) if ids else []
        result = nearby.assemble_page(ranking.total, chosen, rows, start, page_count)
        if not result.stale_cells or attempt == 1 or not ttl_secs:
            break
        keys = [nearby_cells.cell_key(cell) for cell in result.stale_cells]
        await context.redis_batch.run([("DEL", *keys, nearby_viewer.state_key(viewer_id))])
        fresh = await context.run_blocking(nearby.locate_viewer, viewer_id, None)
        if fresh is None:
            return nearby.not_located()
        viewer = fresh
    return result.page


async def _rank(
    context: NativeContext, viewer: Viewer, radius_km: int, ttl_secs: int
) -> nearby_cells.CellRanking:
    """Stage by stage of bands: the cells' people from Redis (one ``MGET`` per stage), the
    cells not cached from the database (pool), until ``MAX_CANDIDATES`` or the radius."""
    ranking = nearby_cells.CellRanking(viewer.excluded, radius_km, nearby.MAX_CANDIDATES)
    for band_lo, band_hi in nearby_cells.stages(radius_km):
        stage = ranking.within(nearby_cells.ring(viewer.cell, band_lo, band_hi))
        cells = [cell for _, cell, _ in stage]
        values: list[Any] = [None] * len(cells)
        if ttl_secs:
            chunk = nearby_cells.MGET_CHUNK_KEYS
            for at in range(0, len(cells), chunk):
                keys = [nearby_cells.cell_key(cell) for cell in cells[at : at + chunk]]
                values[at : at + chunk] = (await context.redis_batch.run([("MGET", *keys)]))[0]
        missing = [cell for cell, value in zip(cells, values, strict=True) if value is None]
        if missing:
            loaded = await context.run_blocking(nearby_cells.load_cells, missing)
            values = [loaded.get(cell, value) for cell, value in zip(cells, values, strict=True)]
        ranking.add(stage, values)
        if ranking.full:
            break
    return ranking
