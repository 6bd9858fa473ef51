"""List cards of nearby people, cached in Redis: a page answered with no database query.

A card is what the nearby page shows of a person plus what its check needs:
``profile:card:<id>`` = ``"<epoch>|<row>|<col>|<fresh until>|<head>\\x1f<tail>"``, where
``row:col`` is the person's grid cell (never coordinates), ``fresh until`` the Unix time
their stored position turns stale, and ``head``/``tail`` the card's JSON (keys sorted,
as the envelope is) cut where ``"distance"`` and ``"distance_km"`` go. Someone who may
not be listed at all (hidden, contacts only, no position, no account) is ``"<epoch>|-"``.

Invariants:

- A card is a copy of the person's ``users`` and ``user_locations`` rows, filled and
  invalidated by the profile cache's one mechanism (:mod:`wsgi_app.services.profile.cache`):
  epoch and generation read before the database read, filled only if unchanged, and
  every committed change of either row deletes it. So a card never shows a row older
  than a committed change, and the page check made from cards is the database's:
  listed only while visible to everyone, in the cell the ranking found them in, with a
  fresh position. Blocks and self are the caller's exclusions
  (:mod:`wsgi_app.services.location.nearby_viewer`, versioned the same way).
- Anyone failing the check is left out and their cell (and a mover's new cell) is
  returned as stale: the query drops it and ranks once more.
- With caching off (the embedded default) every card is read from the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam

from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.models.user import AUTHORITY_EVERYONE, User
from wsgi_app.services.location.grid import Cell, cell_of, distance_label
from wsgi_app.services.location.nearby_cells import LOCATION_MAX_AGE_DAYS
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.services.profile.profiles import PROFILE_FIELDS

NOT_LISTED = "-"
_CUT = "\x1f"  # never in JSON text (control characters are escaped)
_AGE_SECS = timedelta(days=LOCATION_MAX_AGE_DAYS).total_seconds()
_HEAD_KEYS = tuple(sorted(name for name in PROFILE_FIELDS if name < "distance"))
_TAIL_KEYS = tuple(sorted(name for name in PROFILE_FIELDS if name > "distance_km"))
_COLUMNS = [User.id if name == "user_id" else getattr(User, name) for name in PROFILE_FIELDS]
_SELECT_CARDS = (
    db.select(*_COLUMNS, User.authority, UserLocation.lat, UserLocation.lng, UserLocation.updated_at)
    .outerjoin(UserLocation, UserLocation.user_id == User.id)
    .where(User.id.in_(bindparam("ids", expanding=True)))
)
assert set(_HEAD_KEYS) | set(_TAIL_KEYS) == set(PROFILE_FIELDS)  # nothing sorts between the two
_DISTANCES: dict[int, str] = {}


def read_command(user_ids: Sequence[int]) -> tuple[Any, ...]:
    """``MGET`` of the epoch, then these people's cards."""
    return ("MGET", profile_cache.EPOCH_KEY, *(profile_cache.card_key(user_id) for user_id in user_ids))


def _dumps(values: dict[str, Any]) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def encode(row: Any) -> str:
    """A card (without its epoch) from a row of :data:`_SELECT_CARDS`, or :data:`NOT_LISTED`."""
    card = dict(zip(PROFILE_FIELDS, row, strict=False))
    authority, lat, lng, updated_at = row[len(PROFILE_FIELDS) :]
    if authority != AUTHORITY_EVERYONE or lat is None:
        return NOT_LISTED
    if card["birthday"] is not None:
        card["birthday"] = card["birthday"].isoformat()
    cell = cell_of(lat, lng)
    fresh_until = _unix(updated_at) + _AGE_SECS
    head = _dumps({name: card[name] for name in _HEAD_KEYS})[:-1] + ","
    tail = _dumps({name: card[name] for name in _TAIL_KEYS})[1:]
    return f"{cell.row}|{cell.col}|{fresh_until:.0f}|{head}{_CUT}{tail}"


def _unix(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


def load(user_ids: list[int], ttl_secs: int) -> dict[int, str]:
    """These people's cards (with the epoch, as cached) from the database; cached when
    ``ttl_secs``. Runs inside an app context, on the pool."""
    client = redis_client()
    epoch, generations = profile_cache.read_generations(client, user_ids) if ttl_secs else ("", [])
    rows = {row[0]: row for row in db.session.connection().execute(_SELECT_CARDS, {"ids": user_ids})}
    cards = {user_id: encode(rows[user_id]) if user_id in rows else NOT_LISTED for user_id in user_ids}
    if ttl_secs:
        profile_cache.fill_cards(client, epoch, generations, cards, ttl_secs)
    return {user_id: f"{epoch}|{text}" for user_id, text in cards.items()}


def missing(user_ids: Sequence[int], answer: Sequence[Any]) -> list[int]:
    """Those of ``user_ids`` whose card is not in ``answer`` (of :func:`read_command`) at
    the current epoch."""
    prefix = f"{answer[0] or ''}|"
    return [
        user_id
        for user_id, value in zip(user_ids, answer[1:], strict=True)
        if value is None or not value.startswith(prefix)
    ]


def _distance(band_km: int) -> str:
    text = _DISTANCES.get(band_km)
    if text is None:
        label = json.dumps(distance_label(band_km))
        text = _DISTANCES[band_km] = f'"distance":{label},"distance_km":{band_km},'
    return text


def page_json(
    total: int, chosen: list[tuple[int, int, Cell]], cards: Sequence[str], start: int, page_count: int
) -> tuple[str, set[Cell]]:
    """The page's ``data`` as JSON text (keys sorted) from ``chosen`` ``(band, id, cell)`` and
    their cards (as cached, epoch first), and the stale cells: of anyone not listable, no
    longer in that cell or with a stale position (and a mover's new cell)."""
    now = time.time()
    items: list[str] = []
    stale: set[Cell] = set()
    for (band_km, _, cell), value in zip(chosen, cards, strict=True):
        parts = value.split("|", 4)
        if len(parts) < 5:  # NOT_LISTED
            stale.add(cell)
            continue
        _, row, col, fresh_until, body = parts
        if row != str(cell.row) or col != str(cell.col) or float(fresh_until) < now:
            stale.add(cell)
            stale.add(Cell(int(row), int(col)))  # which may be missing them
            continue
        head, _, tail = body.partition(_CUT)
        items.append(f"{head}{_distance(band_km)}{tail}")
    has_next = "true" if start + page_count < total else "false"
    data = f'{{"has_next":{has_next},"list":[{",".join(items)}],"located":true,"total":{total}}}'
    return data, stale
