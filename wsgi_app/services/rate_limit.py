"""Sliding-window rate limits in Redis, several windows checked atomically.

A hit is recorded only when every window still has room, so a refused call
does not eat into the caller's allowance.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

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


def hit(client: redis.Redis, key: str, limits: Sequence[tuple[int, int]], now: float | None = None) -> int:
    """Record one hit if allowed; returns 0, or the seconds until a hit would be allowed."""
    now = time.time() if now is None else now
    args: list[float | int | str] = [now, f"{now:.6f}-{secrets.token_hex(4)}"]
    for limit, window_secs in limits:
        args.extend([limit, window_secs])
    return int(_SLIDING_WINDOW.run(client, [f"rl:{key}"], args))


def enforce(client: redis.Redis, key: str, limits: Sequence[tuple[int, int]], what: str = "requests") -> None:
    """Like :func:`hit`, but raises a 429 :class:`ApiError` with ``Retry-After``."""
    wait_secs = hit(client, key, limits)
    if wait_secs > 0:
        raise ApiError(
            RATE_LIMITED,
            f"too many {what}, retry in {wait_secs}s",
            headers={"Retry-After": str(wait_secs)},
        )
