"""The nearby query on the event loop: Redis (the shared batches) for everything cached, a
thread only for the database.

Per page, with the caches warm, three Redis round trips and no database query, all
in the shared pipelines of :mod:`async_handlers.redis_batch` (one write on its lean
connection, :mod:`async_handlers.redis_wire`, per loop iteration): the caller's cached state is read with
the request's own authentication (:func:`prefetch_state`), then the rate limit and the cells of
the first stage of bands go together (``EVALSHA`` + ``MGET``: no sort, O(cells)
work in Redis), then the page's cards (``MGET``,
:mod:`wsgi_app.services.location.nearby_cards`), which carry what the check of
every listed person needs. Only cards not cached are read from the database
(one pool job, which caches them). Usually two round trips: when this process
has read the first stage's cells before, the page they would rank is guessed and
its cards are read with the cells (:func:`_guess`); the guess is used only if the
cells read with it are the ones guessed from, else the cards are read after.

Invariants (the rules themselves live in :mod:`wsgi_app.services.location`):

- nothing is answered or written before the request is authenticated and
  counted by the rate limit: the prefetched state is only used for a caller
  who authenticated as its user, a reported ``latlng`` is stored only after the
  limit, and a refused request gets its 429 before any page is read;
- the database stays the truth: a missing or stale cache entry (caller state,
  cell, card) is read from it on the pool; cards and caller states are never
  older than a committed change (both are filled under versions read before
  the database read and voided after every commit), and a page whose check
  finds someone gone, hidden or moved drops those cells and the caller's state
  and ranks once more from fresh reads;
- a page is ranked from the cells as read for it, never from an earlier read: a
  guess (:func:`_guess`) only chooses which cards to read along, and counts only
  when the cells read with it are exactly those it was made from;
- the caller's cached state is used only at the version read with it
  (:mod:`wsgi_app.services.location.nearby_viewer`), so a move or a block is
  seen by the caller's next query;
- nothing here blocks the loop: the database and the cell loader run on the pool;
- a cell is read from the database by one pool job at a time per process: a page
  missing a cell that is being loaded waits for that load (:func:`load_cells_once`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from async_handlers.base import NativeContext
from wsgi_app.services import rate_limit
from wsgi_app.services.location import nearby, nearby_cards, nearby_cells, nearby_viewer
from wsgi_app.services.location.grid import Cell
from wsgi_app.services.location.nearby_viewer import Viewer

Command = tuple[Any, ...]
StateRead = asyncio.Future[list[Any]]
Chosen = tuple[int, int, Cell]  # (band, user id, cell): one person of a page
# Each cell's people as last read from Redis, by key: what the next read is guessed to return
# (:func:`_guess`), never an answer. Cleared when it would outgrow GUESS_MAX_CELLS (~3.5 KB a
# cell at ~350 people).
GUESS_MAX_CELLS = 4096
_LAST_READ: dict[str, str] = {}
# Cells being read from the database by a pool job of this process, and that job
# (:func:`load_cells_once`); an entry lives only while its job runs.
_LOADING: dict[Cell, asyncio.Future[dict[Cell, list[int]]]] = {}


def prefetch_state(context: NativeContext, params: Mapping[str, str]) -> tuple[int, StateRead] | None:
    """Start reading the claimed caller's cached state, to share the authentication's pipeline.

    Nothing is decided from it until the caller is authenticated as that user (see
    :func:`find_page`). None when nothing is cached or the request reports a position."""
    claimed = params.get("userId", "")
    # ASCII digits: str.isdigit() also takes '²', which int() refuses (a 500 before the auth).
    digits = claimed.isascii() and claimed.isdigit()
    if "latlng" in params or not digits or not nearby_cells.cache_secs(context.flask_app.config):
        return None
    user_id = int(claimed)
    read = asyncio.ensure_future(context.redis_batch.run(nearby_viewer.read_commands(user_id)))
    read.add_done_callback(_consume)  # a failed read of a request that fails its auth logs nothing
    return user_id, read


def _consume(read: StateRead) -> None:
    if not read.cancelled():
        read.exception()


async def find_page(
    context: NativeContext,
    viewer_id: int,
    latlng: str | None,
    radius_km: int,
    page: int,
    page_count: int,
    prefetched: tuple[int, StateRead] | None = None,
) -> dict[str, Any] | str:
    """One page of the people around the authenticated ``viewer_id``, nearest first: the
    envelope's ``data`` as a dict, or as JSON text (keys sorted) when it lists the located."""
    config = context.flask_app.config
    ttl_secs = nearby_cells.cache_secs(config)
    limits: Sequence[tuple[int, int]] = config["NEARBY_QUERY_LIMITS"]
    limit_command: Command | None = rate_limit.hit_command(f"nearby:query:{viewer_id}", limits)
    viewer, version = None, None
    cached = bool(ttl_secs) and latlng is None
    if cached:
        if prefetched is not None and prefetched[0] == viewer_id:
            state, version = (await prefetched[1])[0]
        else:
            state, version = (await context.redis_batch.run(nearby_viewer.read_commands(viewer_id)))[0]
        viewer = nearby_viewer.decode(viewer_id, state, version)
    before: list[Command] = []  # sent with the first stage's cells (their answers unused)
    if viewer is None:  # the slow path: counted first, then the database
        await _run(context, [limit_command])
        limit_command = None
        viewer = await context.run_blocking(nearby.locate_viewer, viewer_id, latlng)
        if viewer is not None and cached:
            before.append(nearby_viewer.store_command(viewer, version, ttl_secs))
    if viewer is None:
        return nearby.not_located()
    start = (page - 1) * page_count
    for attempt in range(2):
        ranking, chosen, cards = await _rank(
            context, viewer, radius_km, ttl_secs, limit_command, start, page_count, before, attempt == 0
        )
        limit_command, before = None, []
        data, stale_cells = await _page(context, ranking.total, chosen, start, page_count, ttl_secs, cards)
        if not stale_cells or attempt == 1 or not ttl_secs:
            break
        keys = [nearby_cells.cell_key(cell) for cell in stale_cells]
        await context.redis_batch.run([("DEL", *keys, nearby_viewer.state_key(viewer_id))])
        fresh = await context.run_blocking(nearby.locate_viewer, viewer_id, None)
        if fresh is None:
            return nearby.not_located()
        viewer = fresh
    return data


async def _page(
    context: NativeContext,
    total: int,
    chosen: list[Chosen],
    start: int,
    page_count: int,
    ttl_secs: int,
    answer: list[Any] | None = None,
) -> tuple[str, set[Cell]]:
    """The page's ``data`` (JSON text) from the chosen people's cards: cached ones from one
    ``MGET`` (``answer``, when already read), the rest from the database on the pool (cached by the way)."""
    ids = [user_id for _, user_id, _ in chosen]
    if not ids:
        return nearby_cards.page_json(total, chosen, [], start, page_count)
    if ttl_secs:
        if answer is None:
            answer = (await context.redis_batch.run([nearby_cards.read_command(ids)]))[0]
        cards, missing = answer[1:], nearby_cards.missing(ids, answer)
    else:
        cards, missing = [None] * len(ids), ids
    if missing:
        loaded = await context.run_blocking(nearby_cards.load, missing, ttl_secs)
        cards = [loaded.get(user_id, card) for user_id, card in zip(ids, cards, strict=True)]
    return nearby_cards.page_json(total, chosen, cards, start, page_count)


async def _run(context: NativeContext, commands: list[Command | None]) -> list[Any]:
    """``commands``, the first of which may be the rate limit's ``EVALSHA`` (``None``: none);
    a refused hit raises its 429 here."""
    limit = commands[0]
    rest = [command for command in commands[1:] if command is not None]
    client = context.redis_batch
    try:
        answers = await client.run([limit, *rest] if limit else rest)
    except redis.exceptions.NoScriptError:  # first use since Redis started: send the script
        assert limit is not None
        answers = await client.run([rate_limit.eval_fallback(limit), *rest])
    if limit is None:
        return answers
    rate_limit.raise_if_limited(answers[0], "nearby queries")
    return answers[1:]


async def _rank(
    context: NativeContext,
    viewer: Viewer,
    radius_km: int,
    ttl_secs: int,
    limit_command: Command | None,
    start: int,
    page_count: int,
    before: list[Command],
    may_guess: bool,
) -> tuple[nearby_cells.CellRanking, list[Chosen], list[Any] | None]:
    """Stage by stage of bands: the cells' people from Redis (one ``MGET`` per stage, the first
    with ``limit_command`` and the commands ``before``), the cells not cached from the database
    (pool), until ``MAX_CANDIDATES`` people or the radius. Returns the ranking, the page's people,
    and their cards' ``MGET`` answer when :func:`_guess` read it with the first stage (only
    when ``may_guess``: not on a second ranking after a failed check)."""
    ranking = nearby_cells.CellRanking(viewer.excluded, radius_km, nearby.MAX_CANDIDATES)
    steps = nearby_cells.stages(radius_km)
    for index, (band_lo, band_hi) in enumerate(steps):
        stage = nearby_cells.stage(viewer.cell, band_lo, band_hi, radius_km)
        guess = None
        if index == 0 and may_guess and ttl_secs:
            guess = _guess(viewer, stage, radius_km, len(steps) == 1, start, page_count)
        extra = [nearby_cards.read_command([user_id for _, user_id, _ in guess[2]])] if guess else []
        values, extra_answers = await _cached_cells(context, stage, ttl_secs, limit_command, before, extra)
        limit_command, before = None, []
        if guess is not None and values == guess[0]:  # read as guessed: ranked as guessed
            return guess[1], guess[2], extra_answers[0]
        missing = [cell for cell, value in zip(stage.cells, values, strict=True) if value is None]
        if missing:
            loaded = await load_cells_once(context, missing)
            values = [loaded.get(cell, value) for cell, value in zip(stage.cells, values, strict=True)]
        elif ttl_secs:
            _remember(stage, values)
        ranking.add(stage.ring, values)
        if ranking.full:
            break
    if limit_command is not None or before:  # no stage at all (a radius below every cell centre)
        await _run(context, [limit_command, *before])
    return ranking, ranking.page(start, page_count), None


async def load_cells_once(context: NativeContext, cells: list[Cell]) -> dict[Cell, list[int]]:
    """``cells`` from the database, each read by at most one pool job of this process at a time.

    After a cold start every page misses cells, and neighbours miss the same ones: a page
    waits for the load already under way for a cell instead of reading it again, and loads
    only the rest (one query for them all, :func:`nearby_cells.load_cells`)."""
    waits: dict[Cell, asyncio.Future[dict[Cell, list[int]]]] = {}
    todo = []
    for cell in cells:
        under_way = _LOADING.get(cell)
        if under_way is None:
            todo.append(cell)
        else:
            waits[cell] = under_way
    if todo:
        job = asyncio.ensure_future(context.run_blocking(nearby_cells.load_cells, todo))
        for cell in todo:
            _LOADING[cell] = job
            waits[cell] = job
        job.add_done_callback(lambda done: _loaded(todo, done))
    answers = {job: await asyncio.shield(job) for job in set(waits.values())}
    return {cell: answers[job][cell] for cell, job in waits.items()}


def _loaded(cells: list[Cell], job: asyncio.Future[dict[Cell, list[int]]]) -> None:
    for cell in cells:
        if _LOADING.get(cell) is job:
            del _LOADING[cell]
    if not job.cancelled():
        job.exception()  # retrieved: each waiter raises it on its own


def _guess(
    viewer: Viewer, stage: nearby_cells.Stage, radius_km: int, last: bool, start: int, page_count: int
) -> tuple[list[Any], nearby_cells.CellRanking, list[Chosen]] | None:
    """The page as the stage's cells read last time would rank it (``last``: no stage after it),
    so its cards can be read in the same round trip as the cells: ``(the cells' people guessed,
    ranking, page)``, or None (a cell not seen yet, or more stages needed).

    Only a guess of what to read: the page is answered from it only when the cells read with
    it equal the guess, i.e. when the fresh reads rank exactly as guessed."""
    values: list[Any] = [_LAST_READ.get(key) for key in stage.keys]
    if None in values:
        return None
    ranking = nearby_cells.CellRanking(viewer.excluded, radius_km, nearby.MAX_CANDIDATES)
    ranking.add(stage.ring, values)
    chosen = ranking.page(start, page_count) if ranking.full or last else []
    return (values, ranking, chosen) if chosen else None


def _remember(stage: nearby_cells.Stage, values: list[Any]) -> None:
    if len(_LAST_READ) + len(values) > GUESS_MAX_CELLS:
        _LAST_READ.clear()
    _LAST_READ.update(zip(stage.keys, values, strict=True))


async def _cached_cells(
    context: NativeContext,
    stage: nearby_cells.Stage,
    ttl_secs: int,
    limit_command: Command | None,
    before: list[Command],
    extra: list[Command],
) -> tuple[list[Any], list[Any]]:
    """Each cell's cached people (text) or None, and the answers to ``extra`` (sent after the
    cells' ``MGET``); the rate limit goes first, then ``before`` (answers dropped)."""
    commands = [*before, *(stage.reads if ttl_secs else ()), *extra]
    answers = await _run(context, [limit_command, *commands]) if limit_command or commands else []
    answers = answers[len(before) :]
    reads, extra_answers = answers[: len(answers) - len(extra)], answers[len(answers) - len(extra) :]
    if len(reads) == 1:
        return list(reads[0]), extra_answers
    values: list[Any] = [value for answer in reads for value in answer]
    return values or [None] * len(stage.cells), extra_answers
