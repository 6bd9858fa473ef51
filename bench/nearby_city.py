"""The ``nearby`` case's headline: a city's steady state, and its cold start.

The best case (the same 2,000 callers near the centre repeating their first page) is what a
city never does. Here, on the same million people:

- **Viewers** are drawn at random from the whole population (a fresh set per window), and
  each reads 1-3 pages (uniform), nearest first, radius 20 km, 20 a page: a viewer's pages
  are sent in blocks of :data:`BLOCK_VIEWERS`, all first pages of the block, then the
  second pages, then the third, so a follow-up page never races its first page.
- **Caches in a modelled steady state.** A viewer opens nearby in a session whose earlier
  requests left their token cached (the token cache, as the auth lookup fills it), while
  their own nearby state is cold (first page of the session: it expires in 5 minutes).
  Cells and cards are as a steady flow of viewers leaves them: before anything is
  measured, someone in every occupied cell reads pages 1-3 (with moves), so every cell
  and the cards its first pages show are cached, less what moves changed since; every
  window leaves them for the next.
- **People move** during a window: :data:`MOVES_PER_SEC` location reports a second (a city
  of a million), open-loop from their own process, each one person moving to a
  neighbouring cell (~1.1 km: every report is a cell change, the costly kind). The
  reports' own latency is measured from when each was due.
- **Alternated**: with ``BENCH_NEARBY_BASELINE`` (an older checkout), that checkout's
  server runs every window too, in alternating order round by round, on the same data.
- **Calibrated**: ``GET /api/time``'s server CPU on each server before and after
  (:mod:`bench.calibration`); every CPU figure is also given in those units.
- **Cold start**: Redis flushed (cells, cards, tokens, states: everything) and a fresh
  server process, then first pages at c16 at once; per-second pages/s and p99, and the
  time until the rate stays at >= :data:`FULL_SPEED_SHARE` of the same server's steady
  rate without moves.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from bench import nearby_setup as setup
from bench.calibration import Calibration, calibrate, combined
from bench.common import load_average, percentiles
from bench.nearby_city_load import (
    MAX_PAGES,
    MOVES_PER_SEC,
    Population,
    move_requests,
    moves_sent,
    moving,
    page_paths,
    population,
    viewer_paths,
    warm_tokens,
)
from bench.nearby_city_report import (
    CONCURRENCY,
    FULL,
    QUICK,
    Window,
    cold_line,
    full_speed_at,
    per_second,
    render,
    window_row,
)


def measure(
    window: Window,
    port: int,
    pid: int,
    stats: redis.Redis,
    paths: list[str],
    moves: list[list[str]],
    pop: Population,
) -> None:
    setup.forget_rate_limits(stats)
    usec0, cpu0 = setup.redis_usec(stats), setup.server_cpu_s(pid)
    if moves:
        with moving(port, moves) as moved:
            window.result = setup.load(port, CONCURRENCY, paths)
        window.moves_result = moved
        moves_sent(pop, len(moved.get("latencies_ms", [])))
        if moved.get("error_samples"):
            print(f"location reports answered with errors, e.g. {moved['error_samples']}", file=sys.stderr)
    else:
        window.result = setup.load(port, CONCURRENCY, paths)
    window.cpu_s = setup.server_cpu_s(pid) - cpu0
    window.redis_usec = setup.redis_usec(stats) - usec0
    window.pages = len(paths)
    window.load = load_average()


def cold_start(
    stack: ExitStack, env: dict[str, str], root: Path | None, stats: redis.Redis, paths: list[str]
) -> tuple[dict[str, Any], int, int]:
    """Redis flushed, a fresh server, then ``paths`` at c16 at once: the load's result with its timeline."""
    stats.flushall()  # the bench's own redis-server: cells, cards, tokens, states, limits
    port, pid = stack.enter_context(setup.api_server(env, root) if root else setup.api_server(env))
    result = setup.load_timed(port, CONCURRENCY, paths)
    return result, port, pid


def run_city(
    quick: bool,
    app: Any,
    first_id: int,
    people: int,
    env: dict[str, str],
    redis_url: str,
    baseline: Path | None,
) -> list[str]:
    sizes = QUICK if quick else FULL
    rng = random.Random(19)
    stats = redis.Redis.from_url(redis_url)
    names = ["now", *(["baseline"] if baseline else [])]
    windows_with_viewers = 1 + sizes.rounds * 2 * len(names)
    cold_viewers = sizes.cold_pages * len(names)
    pop = population(
        app,
        first_id,
        people,
        sizes.viewers_per_window * windows_with_viewers + 2 * sizes.cpu_pages * len(names) + cold_viewers,
        sizes.movers,
    )
    moves_per_window = int(MOVES_PER_SEC * (30 if quick else 150))
    rows: list[str] = []
    windows: list[Window] = []
    cals: dict[str, list[Calibration]] = {name: [] for name in names}
    cpu_rows: list[str] = []
    cold_lines: list[str] = []
    with ExitStack() as stack:
        servers = {"now": stack.enter_context(setup.api_server(env))}
        if baseline:
            servers["baseline"] = stack.enter_context(setup.api_server(env, baseline))
        warm_tokens(stats, pop.movers)
        for name, (port, pid) in servers.items():
            cals[name].append(calibrate(port, pid, sizes.calibration_requests))
        # warm-up (not measured): caches as a steady flow of viewers leaves them: someone in
        # every occupied cell reads pages 1-3 (cells, and the cards those pages show), with moves
        warm = pop.one_per_cell[: 2 * sizes.viewers_per_window] if quick else pop.one_per_cell
        warm_tokens(stats, warm)
        port, pid = servers["now"]
        measure(
            Window("warm-up", "now", True),
            port,
            pid,
            stats,
            [path for page in range(1, MAX_PAGES + 1) for path in page_paths(pop.creds, warm, page)],
            move_requests(pop, moves_per_window, rng),
            pop,
        )
        for round_index in range(sizes.rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for moves in (True, False):
                for name in order:
                    port, pid = servers[name]
                    viewers = pop.take(sizes.viewers_per_window)
                    warm_tokens(stats, viewers)
                    label = "first pages + 1-3 pages, " + ("50 moves/s" if moves else "no moves")
                    window = Window(label, name, moves)
                    moves_list = move_requests(pop, moves_per_window, rng) if moves else []
                    measure(window, port, pid, stats, viewer_paths(pop.creds, viewers, rng), moves_list, pop)
                    windows.append(window)
        # a viewer's first page against a repeat page, CPU (no moves)
        for name in names:
            port, pid = servers[name]
            viewers = pop.take(sizes.cpu_pages)
            warm_tokens(stats, viewers)
            first = Window("first page of a session", name, False)
            measure(first, port, pid, stats, page_paths(pop.creds, viewers), [], pop)
            repeat = Window("the same viewers' page 1 again", name, False)
            measure(repeat, port, pid, stats, page_paths(pop.creds, viewers), [], pop)
            cal = cals[name][0]
            cpu_rows += [window_row(first, cal), window_row(repeat, cal)]
            first_cpu, repeat_cpu = first.cpu_s / max(1, first.pages), repeat.cpu_s / max(1, repeat.pages)
            cpu_rows.append(
                f"| first / repeat CPU | {name} | {first_cpu / max(repeat_cpu, 1e-9):.2f}x "
                "| | | | | | | | | |"
            )
        for name, (port, pid) in servers.items():
            cals[name].append(calibrate(port, pid, sizes.calibration_requests))
    # cold starts: one server at a time, each after a flush, after the measured windows
    for name in names:
        root = baseline if name == "baseline" else None
        viewers = pop.take(sizes.cold_pages)
        paths = page_paths(pop.creds, viewers)
        with ExitStack() as stack:
            result, _, _ = cold_start(stack, env, root, stats, paths)
        seconds = per_second(result)
        steady = [w for w in windows if w.server == name and not w.moves]
        steady_rate = sum(w.pages / w.result["wall_s"] for w in steady) / max(1, len(steady))
        reached = full_speed_at(seconds, steady_rate)
        first_second = [
            lat for ended, lat in zip(result["ends_s"], result["latencies_ms"], strict=True) if ended < 1.0
        ]
        p99_first = percentiles(first_second)["p99"] if first_second else None
        cold_lines.append(cold_line(name, len(paths), result, p99_first, steady_rate, reached, seconds))
    for w in windows:
        rows.append(window_row(w, combined(cals[w.server])))
    return render(quick, sizes, names, baseline, cals, rows, cpu_rows, cold_lines, windows)


def main() -> None:
    """``python -m bench.nearby_city``: the headline alone, on the people the ``nearby`` case
    loaded (``BENCH_NEARBY_DATABASE_URL``), printed (``BENCH_NEARBY_BASELINE`` alternates)."""
    from bench.common import ensure_bench_secrets

    ensure_bench_secrets()
    database_url = os.environ.get("BENCH_NEARBY_DATABASE_URL", setup.DEFAULT_NEARBY_DATABASE_URL)
    baseline = os.environ.get("BENCH_NEARBY_BASELINE")
    tmp = Path(tempfile.mkdtemp(prefix="bench-city-"))
    with ExitStack() as stack:
        redis_url = stack.enter_context(setup.redis_server())
        app = setup.bench_app(database_url, redis_url, tmp)
        first_id, _, existed = setup.load_people(app, 1_000_000)
        assert existed, "load the people first: python -m bench nearby"
        env = setup.server_env(database_url, redis_url, tmp)
        print(
            "\n".join(
                run_city(False, app, first_id, existed, env, redis_url, Path(baseline) if baseline else None)
            )
        )


if __name__ == "__main__":
    main()
