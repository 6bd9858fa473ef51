"""Profile rows cached in Redis, invalidated on every change of a ``users`` row.

A cached row (``profile:v1:<user id>``) holds the columns of
:data:`wsgi_app.services.profile.profiles.PROFILE_COLUMNS` (profile fields,
phone, authority) as JSON, prefixed by the epoch it was read under, for
:data:`PROFILE_CACHE_TTL_SECS`. Your own profile is read from it: its three
keys (epoch, generation, row) are asked in the request check's one pipelined
Redis round trip (:func:`prefetch_keys`), so a cached own-profile read makes
no database round trip at all.

Invariants (why the cache never serves a row older than a committed change):

* every service that changes a ``users`` row says so in the same transaction
  (:func:`invalidate_after_commit`: ``access.update_profile``, the avatar and
  photo changes, account deletion, positions; a VIP purchase changes no cached column); after its commit
  :func:`invalidate` increments the user's generation (``profile:gen:<id>``)
  and deletes the row in one script. A change whose users are unknown (bulk
  seeding) passes :data:`ALL_USERS`: the global epoch (``profile:epoch``) is
  incremented instead, which voids every cached row;
* a reader reads epoch and generation BEFORE it reads the database, and fills
  only if both are unchanged (:data:`_FILL_SCRIPT`, atomic). A change the
  database read missed committed after that read began, so its invalidation
  comes after they were read: either the fill fails, or it landed first and
  the invalidation deletes (or voids) it. Writers never fill;
* generations live :data:`GENERATION_TTL_SECS` (a day, far longer than any
  request), so one cannot expire and come back to a reader's old value within
  one read; the epoch never expires.

If Redis fails right after a commit, the failed invalidation is logged (the
change is committed; ``transactions.on_commit``); the stale row then lives at
most :data:`PROFILE_CACHE_TTL_SECS`.
A ``users`` or ``user_locations`` row changed outside the services (SQL
console, a test's direct write) needs :func:`invalidate` or ``INCR profile:epoch``.

List cards (``profile:card:<user id>``, written by
:mod:`wsgi_app.services.location.nearby_cards`) live under the same epoch and
generations, filled by the same script, and are deleted with the row: so the
services that change a user's ``user_locations`` row
(:mod:`wsgi_app.services.location.positions`) invalidate that user exactly like a
change of their ``users`` row. A block or unblock makes both users' cached nearby
state stop counting (:func:`wsgi_app.services.location.nearby_viewer.forget`)
after its commit (:mod:`wsgi_app.services.social.blocks`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from wsgi_app.extensions import redis_client
from wsgi_app.models.user import User
from wsgi_app.services.profile.profiles import PROFILE_COLUMNS, load_profile_row
from wsgi_app.services.redis_scripts import LuaScript
from wsgi_app.transactions import collect_on_commit

PROFILE_CACHE_TTL_SECS = 300
GENERATION_TTL_SECS = 24 * 3600
ROW_KEY_PREFIX = "profile:v1:"
CARD_KEY_PREFIX = "profile:card:"
GENERATION_KEY_PREFIX = "profile:gen:"
EPOCH_KEY = "profile:epoch"
COLUMN_NAMES = tuple(column.key for column in PROFILE_COLUMNS)
ALL_USERS = -1  # pending marker: a change whose users are unknown (bump the epoch)
_USERS = User.__table__
# Tables whose rows a cached row or card copies: ``users`` by ``id``, ``user_locations`` by ``user_id``.

# KEYS: epoch, generation, row. ARGV: epoch and generation read before the database
# read ("" = none), encoded row, ttl. The row is stored as "<epoch>|<json>".
_FILL_SCRIPT = """
local epoch = redis.call('GET', KEYS[1]) or ''
if epoch == ARGV[1] and (redis.call('GET', KEYS[2]) or '') == ARGV[2] then
  redis.call('SET', KEYS[3], epoch .. '|' .. ARGV[3], 'EX', ARGV[4])
  return 1
end
return 0
"""

# KEYS: generation, row and card of each user, then the epoch when ARGV[2] is 1.
# ARGV[1]: generation ttl.
_INVALIDATE_SCRIPT = """
local last = #KEYS
if ARGV[2] == '1' then
  last = last - 1
  redis.call('INCR', KEYS[#KEYS])
end
for i = 1, last, 3 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1])
  redis.call('DEL', KEYS[i + 1], KEYS[i + 2])
end
return 1
"""


_FILL = LuaScript(_FILL_SCRIPT)
_INVALIDATE = LuaScript(_INVALIDATE_SCRIPT)


def row_key(user_id: int) -> str:
    return f"{ROW_KEY_PREFIX}{user_id}"


def generation_key(user_id: int) -> str:
    return f"{GENERATION_KEY_PREFIX}{user_id}"


def card_key(user_id: int) -> str:
    return f"{CARD_KEY_PREFIX}{user_id}"


def read_generations(client: Any, user_ids: list[int]) -> tuple[str, list[str]]:
    """The epoch and these users' generations, read BEFORE the database read a fill copies."""
    values = client.mget([EPOCH_KEY, *(generation_key(user_id) for user_id in user_ids)])
    return values[0] or "", [value or "" for value in values[1:]]


def fill_cards(client: Any, epoch: str, generations: list[str], cards: dict[int, str], ttl: int) -> None:
    """Cache ``cards`` (user id -> text, in the order of ``generations``) where epoch and
    generation are still those read before the database read (one pipelined round trip)."""
    pipe = client.pipeline(transaction=False)
    calls = [
        ([EPOCH_KEY, generation_key(user_id), card_key(user_id)], [epoch, generation, text, ttl])
        for (user_id, text), generation in zip(cards.items(), generations, strict=True)
    ]
    for keys, args in calls:
        _FILL.queue(pipe, keys, args)
    for (keys, args), answer in zip(calls, pipe.execute(raise_on_error=False), strict=True):
        if LuaScript.is_missing(answer):
            _FILL.run(client, keys, args)
        elif isinstance(answer, Exception):
            raise answer


class CachedRow:
    """A cached profile row with the attributes :func:`profiles.profile_data` reads."""

    __slots__ = ("values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def birthday(self) -> dt.date | None:
        raw = self.values["birthday"]
        return dt.date.fromisoformat(raw) if raw else None


def encode_row(row: Any) -> str:
    values = {name: getattr(row, name) for name in COLUMN_NAMES}
    if values.get("birthday") is not None:
        values["birthday"] = values["birthday"].isoformat()
    return json.dumps(values, separators=(",", ":"))


def _keys(user_id: int) -> list[str]:
    return [EPOCH_KEY, generation_key(user_id), row_key(user_id)]


def prefetch_keys(claimed_user_id: str | None) -> list[str]:
    """The keys to GET in the request check's round trip for ``userId`` (none when not a number).

    Only the caller's own keys are ever used: :func:`profile_row` looks them up by
    the authenticated user id, which must equal the claimed one when one is sent."""
    stripped = (claimed_user_id or "").strip()
    if not (stripped.isascii() and stripped.isdigit()):  # isdigit() alone takes '²', int() not
        return []
    return _keys(int(stripped))


def profile_row(user_id: int, prefetched: Mapping[str, Any] | None = None) -> Any:
    """``user_id``'s profile row (:data:`COLUMN_NAMES`): cached, else read and cached (501 if none).

    ``prefetched``: the values of :func:`prefetch_keys`; without them, one round trip."""
    keys = _keys(user_id)
    if prefetched is not None and all(key in prefetched for key in keys):
        epoch, generation, cached = (prefetched[key] for key in keys)
    else:
        pipe = redis_client().pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        epoch, generation, cached = pipe.execute()
    encoded = _fresh_row(epoch, cached)
    if encoded is not None:
        return CachedRow(json.loads(encoded))
    row = load_profile_row(user_id)
    _FILL.run(redis_client(), keys, [epoch or "", generation or "", encode_row(row), PROFILE_CACHE_TTL_SECS])
    return row


def _fresh_row(epoch: str | None, cached: str | None) -> str | None:
    """The encoded row of a cache entry read under the current epoch, else None."""
    if cached is None:
        return None
    cached_epoch, _, encoded = cached.partition("|")
    return encoded if cached_epoch == (epoch or "") else None


def cached_in(prefetched: Mapping[str, Any], claimed_user_id: str | None) -> bool:
    """Whether :func:`profile_row` of the claimed user will answer from ``prefetched`` alone
    (no Redis or database call): its entry is there and of the current epoch."""
    keys = prefetch_keys(claimed_user_id)
    if not keys or not all(key in prefetched for key in keys):
        return False
    epoch, _, cached = (prefetched[key] for key in keys)
    return _fresh_row(epoch, cached) is not None


def invalidate(user_ids: Iterable[int]) -> None:
    """After a committed change of these users' rows (:data:`ALL_USERS`: of unknown users):
    one atomic script, one round trip."""
    ids = set(user_ids)
    keys = [
        key
        for user_id in ids - {ALL_USERS}
        for key in (generation_key(user_id), row_key(user_id), card_key(user_id))
    ]
    if ALL_USERS in ids:
        keys.append(EPOCH_KEY)
    _INVALIDATE.run(redis_client(), keys, [GENERATION_TTL_SECS, int(ALL_USERS in ids)])


def invalidate_after_commit(user_ids: Iterable[int]) -> None:
    """Say, inside the transaction that changes these users' ``users`` or ``user_locations``
    rows, that their cached rows and cards go after its commit (:data:`ALL_USERS`: users
    unknown). One :func:`invalidate` per transaction, whatever the number of calls."""
    collect_on_commit("profile-cache", user_ids, invalidate)
