"""Case ``nearby``: ``GET /api/user/nearby/list`` with 1,000,000 people inside 30 km of one centre.

Loads the people in bulk into MariaDB (``BENCH_NEARBY_DATABASE_URL``, default
database ``dt_nb_bench``; reused when already there), starts its own
``redis-server`` on a free port (so ``INFO commandstats`` counts only this
run) and one ``tornado_server.py`` process, and measures the endpoint with
pre-signed requests from a separate load-generator process (``bench.http_loadgen``)
at concurrency 1 and 16 for radii 2, 5 and 20 km and the deepest page, plus the
SQL alternative (bounding box on the ``(lat, lng)`` index, then distance) on
the same rows, and profiles the server with py-spy (``--gil``: CPU only).

``BENCH_NEARBY_BASELINE=/path/to/older/checkout`` also starts that checkout's
server on the same data (with the geo index it searched) and alternates the
two case by case, with fewer requests for the baseline; ratios come from one run.
``--quick``: a few thousand people in a temporary SQLite file, seconds.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from bench import nearby_city
from bench import nearby_setup as setup
from bench.common import load_average, mean, percentiles

DEEPEST_PAGE = 500 // setup.PAGE_COUNT
PROFILE_NOTES = """\
What the profiles showed, and what was done about it (details: bench/nearby_profile.md):

- Before (the issue's profile of the GEOSEARCH code): at 20 km Redis sorted
  ~440,000 members per query (~0.5 s, stalling every client); at 2 km 55% of the
  server's Python loaded 500 full `User` objects to show 20 and 24.5% parsed the
  Redis reply. Grid cells fixed that: no query sorts, a page loads its own 20 cards.
- The cell version ran the whole query as one pool job in an app context
  (py-spy `--gil` at c16: ~50% of the process there). The page then moved to
  the event loop with the caller's state cached and versioned, but one pool job
  still read the page's cards from MariaDB, re-checking every rule (~19% of the
  process at c16, plus the pool hand-off).
- Now the cards are cached in Redis under the profile cache's epoch and
  generations (every committed change of a `users` or `user_locations` row
  drops that person's card; flushed blocks drop both callers' states), and carry
  what the check needs (cell, visibility, freshness): a warm page makes no
  database query and no pool job. Its JSON is assembled from pre-serialised
  pieces. Its three Redis round trips (request check + state, rate limit +
  cells, cards) go over one lean hiredis connection (`async_handlers/redis_wire.py`)
  instead of redis.asyncio pipelines (~30% of the process at c16 before).
- Then (bench/nearby_profile.md, 2026-12-07) the GET left Tornado's
  `RequestHandler` (its routing request, deep-copied query, `_execute` task,
  `finish`/`flush` were ~20% of a page at c16): `async_handlers/lean_get.py`
  answers it on the same connection with the same headers and error envelopes.
  A warm page takes two Redis round trips instead of three: the cards of the page
  the process's last read of those cells would rank are read along with the
  cells, and used only if the cells read equal it. Nagle is set once per
  connection (was two `setsockopt` per request). 0.7-0.85x the CPU per page.
- What remains (py-spy `--gil`, below): Tornado's HTTP/1 reading (~27%, shared
  with every native endpoint), the request check's signature (~10%), nearby's
  own ranking and page (~20%), the Redis client.
"""


def _row(
    label: str, server: str, concurrency: int, count: int, result: dict[str, Any], usec: int, cpu: float
) -> str:
    p = percentiles(result["latencies_ms"])
    ok = result["statuses"].get("200", 0)
    return (
        f"| {label} | {server} | {concurrency} | {count} ({ok} ok) | {p['p50']:.1f} | {p['p95']:.1f} | "
        f"{p['p99']:.1f} | {p['max']:.1f} | {count / result['wall_s']:.0f} | {usec / count:.0f} | "
        f"{cpu * 1000 / count:.2f} | {100 * result['cpu_s'] / result['wall_s']:.0f} | {load_average()} |"
    )


def _profile(pid: int, seconds: int, out: Path) -> list[str]:
    """py-spy ``--gil`` samples of the server: own and inclusive time of the top functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [
        spy,
        "record",
        "-p",
        str(pid),
        "-d",
        str(seconds),
        "-r",
        "200",
        "--gil",
        "-f",
        "raw",
        "-o",
        str(out),
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        return [f"- py-spy failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"]
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in {f.split(" (")[0] for f in frames}:
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
        total += int(count)
    watched = [
        "LeanGet._serve",
        "answer",
        "authenticate_async",
        "find_page",
        "_rank",
        "locate_viewer",
        "_page",
        "page_json",
        "load",
        "_guess",
        "RedisWire.execute",
        "_Connection.data_received",
        "RedisBatcher._send",
        "HTTP1Connection.write_headers",
        "AppContext.pop",
        "HTTP1ServerConnection._server_request_loop",
    ]
    lines = [f"- {name}: {100 * inclusive.get(name, 0) / max(1, total):.1f}% inclusive" for name in watched]
    lines += [
        f"- own {100 * n / max(1, total):.1f}%: {name}"
        for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:8]
    ]
    return [f"{total} samples while holding the GIL:", "", *lines]


def profile_server(pid: int, seconds: int, out: Path, load: Callable[[], object]) -> list[str]:
    """:func:`_profile` of the server ``pid`` while ``load()`` runs (the first line: how many samples)."""
    holder: dict[str, list[str]] = {}
    spy = threading.Thread(target=lambda: holder.update(top=_profile(pid, seconds, out)))
    spy.start()
    load()
    spy.join()
    return holder.get("top", [])


def _measure(
    servers: list[tuple[str, int, int]],
    creds: Any,
    callers: list[tuple[int, str]],
    stats: redis.Redis,
    quick: bool,
) -> list[str]:
    counts = {"now": (30, 60) if quick else (400, 4000), "baseline": (30, 60) if quick else (30, 120)}
    cases = [(f"{r} km, page 1", r, 1) for r in setup.RADII_KM]
    cases.append((f"20 km, page {DEEPEST_PAGE} (deepest)", 20, DEEPEST_PAGE))
    rows = []
    for label, radius, page in cases:
        for index in range(2):  # concurrency 1, then 16
            for name, port, pid in servers:  # alternate the servers case by case
                concurrency, count = (1, 16)[index], counts[name][index]
                setup.forget_rate_limits(stats)
                paths = setup.signed_paths(creds, callers, count, radius, page)
                usec0, cpu0 = setup.redis_usec(stats), setup.server_cpu_s(pid)
                result = setup.load(port, concurrency, paths)
                usec1, cpu1 = setup.redis_usec(stats), setup.server_cpu_s(pid)
                rows.append(_row(label, name, concurrency, count, result, usec1 - usec0, cpu1 - cpu0))
    return rows


def run(quick: bool) -> str:
    from flask_migrate import upgrade

    people = 3000 if quick else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="bench-nearby-"))
    default_url = setup.DEFAULT_NEARBY_DATABASE_URL
    database_url = (
        f"sqlite:///{tmp}/bench.sqlite3"
        if quick
        else os.environ.get("BENCH_NEARBY_DATABASE_URL", default_url)
    )
    if not quick:
        setup.ensure_mariadb_database(database_url)
    baseline = os.environ.get("BENCH_NEARBY_BASELINE")
    with ExitStack() as stack:
        redis_url = stack.enter_context(setup.redis_server())
        app = setup.bench_app(database_url, redis_url, tmp)
        with app.app_context():
            upgrade(revision="heads")
        first_id, load_s, existed = setup.load_people(app, people)
        env = setup.server_env(database_url, redis_url, tmp)
        city = nearby_city.run_city(
            quick, app, first_id, people, env, redis_url, Path(baseline) if baseline else None
        )
        creds, callers = setup.credentials(app, first_id)
        stats = redis.Redis.from_url(redis_url)
        setup.forget_rate_limits(stats)
        servers = [("now", *stack.enter_context(setup.api_server(env)))]
        if baseline:
            setup.fill_geo_index(app, redis_url)
            servers.append(("baseline", *stack.enter_context(setup.api_server(env, Path(baseline)))))
        for name, port, _ in servers:  # warm: cells, every caller's token and state cached, connections open
            warm = 32 if name == "baseline" else len(callers)
            setup.load(port, 16, setup.signed_paths(creds, callers, warm, 20, 1))
        rows = _measure(servers, creds, callers, stats, quick)
        profile: list[str] = []
        if not quick:
            setup.forget_rate_limits(stats)
            paths = setup.signed_paths(creds, callers, 4000, 20, 1)
            port, pid = servers[0][1:]
            profile = profile_server(pid, 8, tmp / "spy.txt", lambda: setup.load(port, 16, paths))
        sql_runs = 3 if quick else 5
        sql_ms = setup.sql_alternative(app, 20, sql_runs)
    shutil.rmtree(tmp, ignore_errors=True)
    loaded = f"reused the {existed:,} already loaded" if existed else f"loaded in {load_s:.0f} s"
    servers_text = f"now = this revision, baseline = {baseline}" if baseline else "this revision"
    lines = [
        "## Nearby people at a million users (`GET /api/user/nearby/list`)",
        "",
        *city,
        "",
        "### Best case (not the headline): 2,000 callers within 3 km of the centre, repeating",
        "",
        f"{people:,} people uniformly inside {setup.CITY_RADIUS_KM:.0f} km of one centre "
        f"(~{people / (math.pi * setup.CITY_RADIUS_KM**2):.0f} per 1 km cell), "
        f"{setup.CALLERS} callers within {setup.CALLER_RADIUS_KM:.0f} km of it ({loaded}); "
        f"{setup.PAGE_COUNT} per page; one server process per checkout ({servers_text}); "
        f"database {database_url.split('://')[0]}; its own redis-server; requests pre-signed, sent by a "
        "separate load-generator process (its CPU use is the `loadgen CPU` column).",
        "",
        "| case | server | concurrency | requests | p50 ms | p95 ms | p99 ms | max ms | pages/s "
        "| Redis µs/page | server CPU ms/page | loadgen CPU % of wall | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"SQL alternative, 20 km, concurrency 1 ({sql_runs} runs; bounding box on the `(lat, lng)` index, "
        f"distance, nearest 500, then one page's cards): p50 {percentiles(sql_ms)['p50']:.0f} ms, "
        f"mean {mean(sql_ms):.0f} ms. Load average {load_average()}.",
    ]
    if profile:
        lines += [
            "",
            PROFILE_NOTES,
            "py-spy of this revision's server, 20 km page 1 at concurrency 16, " + profile[0],
        ]
        lines += profile[1:]
    return "\n".join(lines) + "\n"
