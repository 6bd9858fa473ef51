"""In-place edits of the cached nearby cells when a person moves (no rebuild from the database).

Invariants (the cell cache's own are in :mod:`wsgi_app.services.location.nearby_cells`):

- an edit runs after the commit of the move it mirrors, as one Lua script, so concurrent
  moves in one cell never lose each other's edit and a reader sees a cell before or after
  a move, never half of it;
- only cells already cached are edited, keeping their expiry; a missing cell is read from
  the database when next needed;
- a cell's text stays ids ascending, each once; a person enters a cell only when the
  database would list them there (visible to everyone, fresh), which the caller decides.
"""

from __future__ import annotations

from collections.abc import Iterable

from wsgi_app.extensions import redis_client
from wsgi_app.services.location.grid import Cell
from wsgi_app.services.location.nearby_cells import cache_secs, cell_key
from wsgi_app.services.redis_scripts import LuaScript

# KEYS: the cells a person leaves (the first ARGV[2] keys), then the cells they enter;
# ARGV[1]: their id. Only cells already cached are edited (a missing one is read from the
# database when next needed), keeping their expiry; ids stay ascending and unique.
_MOVE_LUA = """
local id = ARGV[1]
local number = tonumber(id)
local leaving = tonumber(ARGV[2])
for index, key in ipairs(KEYS) do
  local members = redis.call('GET', key)
  if members then
    local padded = ',' .. members .. ','
    local at, stop = string.find(padded, ',' .. id .. ',', 1, true)
    if index <= leaving then
      if at then
        padded = string.sub(padded, 1, at) .. string.sub(padded, stop + 1)
        redis.call('SET', key, string.sub(padded, 2, -2), 'KEEPTTL')
      end
    elseif not at then
      local before = nil
      for position, item in string.gmatch(members, '()(%d+)') do
        if tonumber(item) > number then
          before = position
          break
        end
      end
      local updated
      if members == '' then
        updated = id
      elseif before == nil then
        updated = members .. ',' .. id
      else
        updated = string.sub(members, 1, before - 1) .. id .. ',' .. string.sub(members, before)
      end
      redis.call('SET', key, updated, 'KEEPTTL')
    end
  end
end
return 0
"""
_MOVE = LuaScript(_MOVE_LUA)


def move(user_id: int, leaves: Iterable[Cell], enters: Iterable[Cell]) -> None:
    """After a committed position change: take ``user_id`` out of the cached ``leaves`` and
    into the cached ``enters`` in place, atomically in Redis (one script: concurrent moves
    in one cell never lose each other's edit). A cell not cached is left to its next read.

    ``enters`` must only name cells where the person is listed by the invariants (visible
    to everyone, fresh). O(people in the cell) in Redis, no database read, instead of
    dropping both cells for the next page to rebuild."""
    left, entered = [cell_key(cell) for cell in leaves], [cell_key(cell) for cell in enters]
    if (left or entered) and cache_secs():
        _MOVE.run(redis_client(), [*left, *entered], [user_id, len(left)])
