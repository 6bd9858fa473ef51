"""Sliding-window rate limits in Redis, several windows checked atomically.

A hit is recorded only when every window still has room, so a refused call
does not eat into the caller's allowance. :func:`hit_command` and
:func:`raise_if_limited` are the same check, sans-I/O, for the event loop's
async Redis (``EVALSHA``; :func:`eval_fallback` when the script is not loaded).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

import redis

from wsgi_app.errors import RATE_LIMITED, ApiError
from wsgi_app.services.redis_scripts import LuaScript

# KEYS[1] = sorted set of hit times; ARGV = now, member, then (limit, window) pairs.
# Returns 0 when allowed (and recorded), else the seconds to wait.
_SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local member = ARGV[2]
local longest = 0
local wait = 0
for i = 3, #ARGV, 2 do
  local limit = tonumber(ARGV[i])
  local window = tonumber(ARGV[i + 1])
  if window > longest then longest = window end
  local count = redis.call('ZCOUNT', key, now - window, '+inf')
  if count >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', key, now - window, '+inf',
                              'WITHSCORES', 'LIMIT', count - limit, 1)
    local until_free = math.ceil(tonumber(oldest[2]) + window - now)
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then return wait end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - longest)
redis.call('ZADD', key, now, member)
redis.call('EXPIRE', key, longest)
return 0
"""
_SLIDING_WINDOW = LuaScript(_SLIDING_WINDOW_LUA)


def _script_args(key: str, limits: Sequence[tuple[int, int]], now: float | None) -> list[Any]:
    now = time.time() if now is None else now
    args: list[Any] = [1, f"rl:{key}", now, f"{now:.6f}-{secrets.token_hex(4)}"]
    for limit, window_secs in limits:
        args.extend([limit, window_secs])
    return args


def hit_command(key: str, limits: Sequence[tuple[int, int]], now: float | None = None) -> tuple[Any, ...]:
    """The Redis command of one :func:`hit` (its answer goes to :func:`raise_if_limited`)."""
    return ("EVALSHA", _SLIDING_WINDOW.sha, *_script_args(key, limits, now))


def eval_fallback(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """:func:`hit_command` sending the script itself (after a ``NOSCRIPT`` answer)."""
    return ("EVAL", _SLIDING_WINDOW.source, *command[2:])


def raise_if_limited(wait_secs: int | str, what: str) -> None:
    """A 429 :class:`ApiError` with ``Retry-After`` when the hit was refused."""
    wait = int(wait_secs)
    if wait > 0:
        raise ApiError(RATE_LIMITED, f"too many {what}, retry in {wait}s", headers={"Retry-After": str(wait)})


def hit(client: redis.Redis, key: str, limits: Sequence[tuple[int, int]], now: float | None = None) -> int:
    """Record one hit if allowed; returns 0, or the seconds until a hit would be allowed."""
    _numkeys, rl_key, *args = _script_args(key, limits, now)
    return int(_SLIDING_WINDOW.run(client, [rl_key], args))


def enforce(client: redis.Redis, key: str, limits: Sequence[tuple[int, int]], what: str = "requests") -> None:
    """Like :func:`hit`, but raises a 429 :class:`ApiError` with ``Retry-After``."""
    raise_if_limited(hit(client, key, limits), what)
