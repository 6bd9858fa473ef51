-- wrk script: send pre-built raw HTTP requests from a pool file, never one twice.
--
--   WRK_POOL=prefix WRK_OUT=path WRK_MODE=once|cycle wrk -t T -c C -d D -s bench/wrk_pool.lua URL
--
-- (Environment, not script arguments: done() runs in wrk's main Lua state,
-- which never sees init()'s arguments.) Thread i (1-based) reads the file
-- WRK_POOL .. "." .. i: raw requests separated by a NUL byte, built and signed by bench/loadgen.py before the timed window (every
-- signed request carries a fresh nonce, so none may be sent twice). MODE "once"
-- stops the thread when its pool runs out and reports it as exhausted; MODE
-- "cycle" wraps around (only for unsigned requests). done() writes one JSON
-- object to WRK_OUT: the summary and the full latency histogram in
-- microseconds ({"us": count}), so rounds can be merged exactly.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local pool = {}
local index = 0
local mode = "once"
exhausted = 0

function init(args)
  mode = os.getenv("WRK_MODE") or "once"
  local f = assert(io.open(os.getenv("WRK_POOL") .. "." .. id, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local stop = string.find(data, "\0", pos, true)
    if not stop then
      table.insert(pool, string.sub(data, pos))
      break
    end
    table.insert(pool, string.sub(data, pos, stop - 1))
    pos = stop + 1
  end
end

function request()
  index = index + 1
  if index > #pool then
    if mode == "cycle" then
      index = 1
    else
      -- Out of signed requests: stop, and send an unsigned health check rather
      -- than repeat a nonce (the window is reported invalid anyway).
      exhausted = 1
      wrk.thread:stop()
      return wrk.format("GET", "/api/health")
    end
  end
  return pool[index]
end

function done(summary, latency, requests)
  local exhausted_threads = 0
  for _, thread in ipairs(threads) do
    exhausted_threads = exhausted_threads + (thread:get("exhausted") or 0)
  end
  local parts = {}
  -- latency(i) is the i-th populated histogram bucket: its value (us) and count.
  for i = 1, #latency do
    local us, count = latency(i)
    table.insert(parts, string.format('"%d":%d', us, count))
  end
  local e = summary.errors
  local out = assert(io.open(os.getenv("WRK_OUT"), "w"))
  out:write(string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d},"exhausted_threads":%d,"latency_us":{%s}}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, exhausted_threads, table.concat(parts, ",")))
  out:close()
end
