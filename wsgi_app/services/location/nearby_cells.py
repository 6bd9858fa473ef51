"""Nearby search by grid cell: the cells around a caller, band by band, and who is in each.

Invariants:

- Around a caller's cell, cells are visited in the order ``(band, row, col)``:
  ``band`` is the whole-km distance between cell centres, the figure the list
  shows, so "nearest first" needs no sort of a city, and inside a band the
  order says nothing finer than the band. A cell is within the radius when its
  centre is (as ``GEOSEARCH BYRADIUS`` on centres was).
- A cell's people are the ids, ascending, of users located in it, visible to
  everyone and with a fresh position. They are read from ``user_locations`` by
  its ``(lat, lng)`` index (stored positions are cell centres: one equality on
  ``lat`` and a range on ``lng`` per row of cells). Nothing is ever rebuilt as
  a whole, so no request pays for a rebuild and whatever another process wrote
  to the database (the ``seed-demo`` CLI) is what the next read sees.
- With a real Redis, cells are cached as ``nearby:cell:{row}:{col}`` (ids as
  decimal text, ``NEARBY_CELL_CACHE_SECS``). Every position write, after its
  commit, edits the cached old and new cell in place (:mod:`.nearby_cell_edits`: out of one,
  into the other, one atomic script), so a mover leaves the old cell at once and
  no page rebuilds a cell from the database because someone moved; other changes
  (visibility, deletion, the CLI's seeding) drop the cells they touch. A cell read
  from the database before a move committed but stored after it may miss the
  mover until it expires; the page check (``services.location.nearby_cards.page_json``,
  from cards that are never older than a committed change) drops any cell whose
  listed person is no longer there, hidden or stale. The embedded default's
  Redis stand-in lives in one process, so there nothing is cached at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import and_, func, or_

from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.models.user import AUTHORITY_EVERYONE, User
from wsgi_app.redis_client import is_embedded
from wsgi_app.services.location.grid import (
    GRID_KM,
    KM_PER_DEGREE_LAT,
    Cell,
    cell_centre,
    cell_of,
    distance_band_km,
    distance_km,
    row_geometry,
)
from wsgi_app.timeutil import utcnow

CELL_KEY_PREFIX = "nearby:cell:"
DEFAULT_CELL_CACHE_SECS = 300
LOCATION_MAX_AGE_DAYS = 30
# Bands are visited in stages; a dense city stops after the first one.
BAND_STAGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (2, 3),
    (4, 6),
    (7, 10),
    (11, 20),
    (21, 40),
    (41, 70),
    (71, 100),
)
# Ring lists up to this band are small (a few hundred cells) and memoised per caller cell.
SMALL_STAGE_MAX_BAND = 10
MGET_CHUNK_KEYS = 1000
GROUP_CONCAT_SAFE_CHARS = 1_000_000  # under MariaDB's group_concat_max_len: a cell's text is whole

# (band, cell, km between centres): one cell of a ring around a caller.
RingCell = tuple[int, Cell, float]


def cell_key(cell: Cell) -> str:
    return f"{CELL_KEY_PREFIX}{cell.row}:{cell.col}"


def cache_secs(config: Mapping[str, Any] | None = None) -> int:
    """How long a cell stays cached: ``NEARBY_CELL_CACHE_SECS``; unset, 300 s on a real
    Redis and 0 (no caching) on the in-process stand-in, which other processes never see."""
    config = config if config is not None else current_app.config
    configured = config.get("NEARBY_CELL_CACHE_SECS")
    if configured is not None:
        return int(configured)
    return 0 if is_embedded(config.get("REDIS_URL", "memory://")) else DEFAULT_CELL_CACHE_SECS


def stages(radius_km: int) -> list[tuple[int, int]]:
    return [(lo, min(hi, radius_km)) for lo, hi in BAND_STAGES if lo <= radius_km]


def ring(centre: Cell, band_lo: int, band_hi: int) -> tuple[RingCell, ...]:
    """Cells whose band from ``centre`` is in ``[band_lo, band_hi]``, ordered ``(band, row, col)``."""
    if band_hi <= SMALL_STAGE_MAX_BAND:
        return _ring_cached(centre, band_lo, band_hi)
    return _ring(centre, band_lo, band_hi)


@lru_cache(maxsize=8192)
def _ring_cached(centre: Cell, band_lo: int, band_hi: int) -> tuple[RingCell, ...]:
    return _ring(centre, band_lo, band_hi)


def _ring(centre: Cell, band_lo: int, band_hi: int) -> tuple[RingCell, ...]:
    origin = cell_centre(centre)
    reach_km = band_hi + 0.5  # the largest distance that still rounds to band_hi
    row_span = math.ceil(reach_km / GRID_KM) + 1
    found: list[RingCell] = []
    for row in range(centre.row - row_span, centre.row + row_span + 1):
        centre_lat, cells_in_row, lng_step = row_geometry(row)
        if abs(centre_lat) > 89.0:
            continue
        km_per_col = lng_step * KM_PER_DEGREE_LAT * math.cos(math.radians(centre_lat))
        col_span = min(math.ceil(reach_km / km_per_col) + 1, cells_in_row // 2)
        middle = cell_of(centre_lat, origin.lng).col
        columns = {(middle + offset) % cells_in_row for offset in range(-col_span, col_span + 1)}
        for col in columns:
            cell = Cell(row, col)
            km = distance_km(origin, cell_centre(cell))
            band = distance_band_km(km)
            if band_lo <= band <= band_hi:
                found.append((band, cell, km))
    found.sort(key=lambda item: (item[0], item[1]))
    return tuple(found)


class Stage(NamedTuple):
    """One stage of bands around a caller's cell, within a radius: its cells in visiting order
    and the ``MGET`` commands reading their cached people (``MGET_CHUNK_KEYS`` keys each)."""

    ring: tuple[RingCell, ...]
    cells: tuple[Cell, ...]
    keys: tuple[str, ...]
    reads: tuple[tuple[str, ...], ...]


def stage(centre: Cell, band_lo: int, band_hi: int, radius_km: int) -> Stage:
    """The cells of bands ``[band_lo, band_hi]`` around ``centre`` whose centre is within
    ``radius_km``; memoised like :func:`ring` (every caller of a cell asks the same)."""
    if band_hi <= SMALL_STAGE_MAX_BAND:
        return _stage_cached(centre, band_lo, band_hi, radius_km)
    return _stage(centre, band_lo, band_hi, radius_km)


@lru_cache(maxsize=8192)
def _stage_cached(centre: Cell, band_lo: int, band_hi: int, radius_km: int) -> Stage:
    return _stage(centre, band_lo, band_hi, radius_km)


def _stage(centre: Cell, band_lo: int, band_hi: int, radius_km: int) -> Stage:
    kept = tuple(item for item in ring(centre, band_lo, band_hi) if item[2] <= radius_km)
    keys = [cell_key(cell) for _, cell, _ in kept]
    reads = tuple(("MGET", *keys[at : at + MGET_CHUNK_KEYS]) for at in range(0, len(keys), MGET_CHUNK_KEYS))
    return Stage(kept, tuple(cell for _, cell, _ in kept), tuple(keys), reads)


def encode(ids: Iterable[int]) -> str:
    return ",".join(map(str, ids))


def decode(value: str) -> list[int]:
    return [int(part) for part in value.split(",")] if value else []


def load_cells(cells: Sequence[Cell]) -> dict[Cell, list[int]]:
    """The people of ``cells`` from the database (caching them when enabled)."""
    if not cells:
        return {}
    by_row: dict[int, list[Cell]] = {}
    for cell in cells:
        by_row.setdefault(cell.row, []).append(cell)
    conditions = []
    for row_cells in by_row.values():
        centres = [cell_centre(cell) for cell in row_cells]
        conditions.append(
            and_(
                UserLocation.lat == centres[0].lat,
                UserLocation.lng.between(min(p.lng for p in centres), max(p.lng for p in centres)),
            )
        )
    fresh_since = utcnow() - timedelta(days=LOCATION_MAX_AGE_DAYS)
    listed = (or_(*conditions), UserLocation.updated_at >= fresh_since, User.authority == AUTHORITY_EVERYONE)
    people: dict[Cell, list[int]] = {cell: [] for cell in cells}
    connection = db.session.connection()  # Core: no ORM row objects
    grouped = connection.dialect.name == "mysql" and _load_grouped(connection, listed, people)
    if not grouped:
        query = db.select(UserLocation.user_id, UserLocation.lat, UserLocation.lng).join(User).where(*listed)
        for user_id, lat, lng in connection.execute(query):
            members = people.get(cell_of(lat, lng))
            if members is not None:
                members.append(user_id)
    for members in people.values():
        members.sort()
    ttl = cache_secs()
    if ttl:
        with redis_client().pipeline(transaction=False) as pipe:
            for cell, members in people.items():
                pipe.set(cell_key(cell), encode(members), ex=ttl)
            pipe.execute()
    return people


def _load_grouped(connection: Any, listed: tuple[Any, ...], people: dict[Cell, list[int]]) -> bool:
    """MariaDB: one row per cell centre, its people as ``GROUP_CONCAT`` text (no per-person rows:
    a cold start reads every cell); False, ``people`` untouched, if a text may have been cut."""
    query = (
        db.select(UserLocation.lat, UserLocation.lng, func.group_concat(UserLocation.user_id))
        .join(User, User.id == UserLocation.user_id)
        .where(*listed)
        .group_by(UserLocation.lat, UserLocation.lng)
    )
    rows = connection.execute(query).all()
    if any(len(text) >= GROUP_CONCAT_SAFE_CHARS for _, _, text in rows):
        return False
    for lat, lng, text in rows:
        members = people.get(cell_of(lat, lng))
        if members is not None:
            members.extend(decode(text))
    return True


def invalidate(cells: Iterable[Cell]) -> None:
    """Drop the cached copies of ``cells`` (after the write that changed them has committed)."""
    keys = {cell_key(cell) for cell in cells}
    if keys and cache_secs():
        redis_client().delete(*keys)


def _lists(members: str, token: str) -> bool:
    """Whether the cached text ``members`` (``"3,8,21"``) holds the id ``token`` as a whole item."""
    at = members.find(token)
    while at != -1:
        end = at + len(token)
        if (at == 0 or members[at - 1] == ",") and (end == len(members) or members[end] == ","):
            return True
        at = members.find(token, end)
    return False


class CellRanking:
    """The first ``limit`` people around a caller, cell by cell, without listing them all.

    A cell's people stay as their cached text (``"3,8,21"``) or loaded ids; only
    their count is taken (and whether an excluded id is among them), so ranking
    a stage costs O(cells) in C string operations, not O(people) in Python. Only
    the cells a page overlaps are decoded (:meth:`page`). The order is the one
    of the invariants: ``(band, row, col)``, then id ascending inside a cell.
    """

    # With more excluded ids than this, a cell is decoded instead of searched per id.
    MAX_SEARCHED_EXCLUSIONS = 16

    def __init__(self, excluded: frozenset[int], radius_km: int, limit: int) -> None:
        self.excluded = excluded
        self.radius_km = radius_km
        self.limit = limit
        self.total = 0
        self._cells: list[tuple[int, Cell, str | Sequence[int], int]] = []  # band, cell, people, kept
        self._tokens = tuple(map(str, excluded)) if len(excluded) <= self.MAX_SEARCHED_EXCLUSIONS else ()

    @property
    def full(self) -> bool:
        return self.total >= self.limit

    def add(self, stage: Sequence[RingCell], people: Sequence[str | Sequence[int]]) -> None:
        """Count in the people of the stage's cells (``people[i]`` for ``stage[i]``, ids or
        their cached text) until full."""
        for (band, cell, _), members in zip(stage, people, strict=True):
            if self.full:
                return
            count = self._count(members)
            if count:
                kept = min(count, self.limit - self.total)
                self._cells.append((band, cell, members, kept))
                self.total += kept

    def _count(self, members: str | Sequence[int]) -> int:
        if not members:
            return 0
        if not isinstance(members, str) or len(self.excluded) > self.MAX_SEARCHED_EXCLUSIONS:
            return len(self._ids(members))
        count = members.count(",") + 1
        for token in self._tokens:  # a substring test first: no copy of the cell's text
            if token in members and _lists(members, token):
                count -= 1
        return count

    def _ids(self, members: str | Sequence[int], first: int | None = None) -> list[int]:
        """The cell's people less the excluded; with ``first``, at least its first ``first``
        of them (cached text is split only that far: a page needs 20 of a cell's hundreds)."""
        if isinstance(members, str):
            if first is None:
                ids: Sequence[int] = decode(members)
            else:
                wanted = first + len(self.excluded)  # enough even if every excluded id is here
                ids = [int(part) for part in members.split(",", wanted)[:wanted]]
        else:
            ids = members
        excluded = self.excluded
        return [user_id for user_id in ids if user_id not in excluded]

    def page(self, start: int, count: int) -> list[tuple[int, int, Cell]]:
        """Ranked people ``start`` to ``start + count - 1`` as ``(band, user id, cell)``."""
        chosen: list[tuple[int, int, Cell]] = []
        end = min(start + count, self.total)
        at = 0
        for band, cell, members, kept in self._cells:
            if at >= end:
                break
            if at + kept > start:
                ids = self._ids(members, min(kept, end - at))[:kept]
                chosen.extend((band, user_id, cell) for user_id in ids[max(0, start - at) : end - at])
            at += kept
        return chosen
