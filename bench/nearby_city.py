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

import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis

from bench import nearby_setup as setup
from bench.calibration import Calibration, calibrate, combined
from bench.common import REPO_ROOT, load_average, percentiles

MOVES_PER_SEC = 50
RADIUS_KM = 20
MAX_PAGES = 3
BLOCK_VIEWERS = 64
CONCURRENCY = 16
MOVE_CONNECTIONS = 4
MOVE_KM = 1.1
FULL_SPEED_SHARE = 0.8
COLD_SECS_SHOWN = 12


@dataclass(frozen=True)
class Sizes:
    viewers_per_window: int
    movers: int
    rounds: int
    calibration_requests: int
    cold_pages: int
    cpu_pages: int  # first-page-only and repeat-only windows


FULL = Sizes(
    viewers_per_window=2500, movers=4000, rounds=2, calibration_requests=4000, cold_pages=6000, cpu_pages=3000
)
QUICK = Sizes(
    viewers_per_window=60, movers=60, rounds=1, calibration_requests=300, cold_pages=150, cpu_pages=100
)


@dataclass
class Population:
    """Bench people with tokens: a pool of viewers (each used for one window) and the movers."""

    creds: Any
    viewers: list[tuple[int, str]]
    movers: list[tuple[int, str]]
    positions: dict[int, tuple[float, float]]
    one_per_cell: list[tuple[int, str]]  # someone in every occupied cell: the warm-up's viewers
    next_viewer: int = 0
    planned: list[tuple[int, tuple[float, float]]] = field(default_factory=list)

    def take(self, count: int) -> list[tuple[int, str]]:
        taken = self.viewers[self.next_viewer : self.next_viewer + count]
        self.next_viewer += count
        assert len(taken) == count, "viewer pool exhausted"
        return taken


@dataclass
class Window:
    label: str
    server: str
    moves: bool
    pages: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    redis_usec: int = 0
    moves_result: dict[str, Any] = field(default_factory=dict)
    load: str = ""


def _issue_tokens(app: Any, user_ids: list[int]) -> list[str]:
    """A live token for each user, inserted in bulk (as sign-ins would have issued them)."""
    from wsgi_app.extensions import db
    from wsgi_app.models.user import AuthToken
    from wsgi_app.services.auth import tokens
    from wsgi_app.timeutil import utcnow

    raw = [secrets.token_hex(32) for _ in user_ids]
    now = utcnow()
    with app.app_context():
        rows = [
            {
                "user_id": uid,
                "token_hash": tokens.hash_token(tok),
                "created_at": now,
                "expires_at": now + timedelta(days=1),
            }
            for uid, tok in zip(user_ids, raw, strict=True)
        ]
        for at in range(0, len(rows), 5000):
            db.session.execute(db.insert(AuthToken), rows[at : at + 5000])
        db.session.commit()
    return raw


def warm_tokens(client: redis.Redis, people: list[tuple[int, str]]) -> None:
    """The token cache as a session's earlier requests leave it (what the auth lookup writes)."""
    from wsgi_app.services.auth import tokens

    with client.pipeline(transaction=False) as pipe:
        for user_id, token in people:
            pipe.set(tokens.cache_key(tokens.hash_token(token)), str(user_id), ex=tokens.TOKEN_CACHE_MAX_SECS)
        pipe.execute()


def population(app: Any, first_id: int, people: int, viewers: int, movers: int) -> Population:
    from sqlalchemy import func

    from wsgi_app.extensions import db
    from wsgi_app.models.location import UserLocation
    from wsgi_app.services.auth import applications

    rng = random.Random()
    chosen = rng.sample(range(first_id, first_id + people), viewers + movers)
    viewer_ids, mover_ids = chosen[:viewers], chosen[viewers:]
    with app.app_context():
        one_per_cell = list(
            db.session.execute(
                db.select(func.min(UserLocation.user_id)).group_by(UserLocation.lat, UserLocation.lng)
            ).scalars()
        )
        creds = applications.create_application(f"bench-city-{secrets.token_hex(3)}", "hmac-sha256")
        db.session.commit()
        rows = db.session.execute(
            db.select(UserLocation.user_id, UserLocation.lat, UserLocation.lng).where(
                UserLocation.user_id.in_(mover_ids)
            )
        ).all()
    positions = {user_id: (lat, lng) for user_id, lat, lng in rows}
    viewer_tokens = _issue_tokens(app, viewer_ids)
    mover_tokens = _issue_tokens(app, mover_ids)
    cell_tokens = _issue_tokens(app, one_per_cell)
    return Population(
        creds,
        list(zip(viewer_ids, viewer_tokens, strict=True)),
        list(zip(mover_ids, mover_tokens, strict=True)),
        positions,
        list(zip(one_per_cell, cell_tokens, strict=True)),
    )


def _signed(creds: Any, method: str, path: str, params: dict[str, str]) -> str:
    from wsgi_app.services.auth.signing import sign_params

    signed = sign_params(
        params,
        appkey=creds.appkey,
        secret=creds.secret,
        sign_method=creds.sign_method,
        http_method=method,
        path=path,
    )
    return urlencode(signed)


def viewer_paths(creds: Any, viewers: list[tuple[int, str]], rng: random.Random) -> list[str]:
    """Each viewer's 1-3 pages, in blocks: the block's first pages, then second, then third."""
    path = "/api/user/nearby/list"
    out = []
    for at in range(0, len(viewers), BLOCK_VIEWERS):
        block = [(viewer, rng.randint(1, MAX_PAGES)) for viewer in viewers[at : at + BLOCK_VIEWERS]]
        for page in range(1, MAX_PAGES + 1):
            for (user_id, token), pages in block:
                if page <= pages:
                    params = {
                        "userId": str(user_id),
                        "token": token,
                        "radius": str(RADIUS_KM),
                        "page": str(page),
                        "pageCount": str(setup.PAGE_COUNT),
                    }
                    out.append(f"{path}?{_signed(creds, 'GET', path, params)}")
    return out


def first_page_paths(creds: Any, viewers: list[tuple[int, str]], page: int = 1) -> list[str]:
    path = "/api/user/nearby/list"
    out = []
    for user_id, token in viewers:
        params = {
            "userId": str(user_id),
            "token": token,
            "radius": str(RADIUS_KM),
            "page": str(page),
            "pageCount": str(setup.PAGE_COUNT),
        }
        out.append(f"{path}?{_signed(creds, 'GET', path, params)}")
    return out


def move_requests(pop: Population, count: int, rng: random.Random) -> list[list[str]]:
    """``count`` signed reports, each a mover (round robin) stepping ~1.1 km to a neighbouring
    cell from where their last sent report left them (:func:`moves_sent` records those)."""
    path = "/api/location/report"
    out = []
    planned = dict(pop.positions)
    pop.planned = []
    for index in range(count):
        user_id, token = pop.movers[index % len(pop.movers)]
        lat, lng = planned[user_id]
        angle = rng.random() * 2 * math.pi
        lat += MOVE_KM * math.cos(angle) / 111.32
        lng += MOVE_KM * math.sin(angle) / (111.32 * math.cos(math.radians(lat)))
        planned[user_id] = (lat, lng)
        pop.planned.append((user_id, (lat, lng)))
        params = {"userId": str(user_id), "token": token, "latlng": f"{lat:.6f},{lng:.6f}"}
        out.append(["POST", path, _signed(pop.creds, "POST", path, params)])
    return out


def moves_sent(pop: Population, sent: int) -> None:
    """The first ``sent`` planned reports went out (in order): movers are where those put them."""
    for user_id, position in pop.planned[:sent]:
        pop.positions[user_id] = position
    pop.planned = []


@contextmanager
def moving(port: int, requests: list[list[str]]) -> Iterator[dict[str, Any]]:
    """People reporting moves at :data:`MOVES_PER_SEC` (open loop) while the body runs."""
    stop_file = Path(tempfile.mkdtemp(prefix="bench-moves-")) / "stop"
    job = {
        "host": "127.0.0.1",
        "port": port,
        "concurrency": MOVE_CONNECTIONS,
        "rate": MOVES_PER_SEC,
        "requests": requests,
        "stop_file": str(stop_file),
    }
    holder: dict[str, Any] = {}

    def send() -> None:
        out = subprocess.run(
            [sys.executable, "-m", "bench.http_loadgen"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        )
        holder.update(json.loads(out.stdout))

    thread = threading.Thread(target=send)
    thread.start()
    try:
        yield holder
    finally:
        stop_file.touch()
        thread.join()


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


def _pct(result: dict[str, Any]) -> dict[str, float]:
    return percentiles(result.get("latencies_ms") or [0.0])


def window_row(w: Window, cal: Calibration) -> str:
    p = _pct(w.result)
    ok = w.result["statuses"].get("200", 0)
    cpu_ms = 1000 * w.cpu_s / max(1, w.pages)
    moved = ""
    if w.moves_result:
        m = _pct(w.moves_result)
        count = len(w.moves_result.get("latencies_ms", []))
        good = w.moves_result["statuses"].get("200", 0)
        other = {code: n for code, n in w.moves_result["statuses"].items() if code != "200"}
        moved = (
            f"{count / w.result['wall_s']:.0f}/s ({good}/{count} ok{', ' + str(other) if other else ''}): "
            f"p50 {m['p50']:.1f}, p99 {m['p99']:.1f}"
        )
    return (
        f"| {w.label} | {w.server} | {w.pages} ({ok} ok) | {p['p50']:.1f} | {p['p99']:.1f} | "
        f"{p['max']:.0f} | "
        f"{w.pages / w.result['wall_s']:.0f} | {cpu_ms:.2f} | {cal.units(cpu_ms):.1f} | "
        f"{w.redis_usec / max(1, w.pages):.0f} | {moved or '-'} | {w.load} |"
    )


def cold_start(
    stack: ExitStack, env: dict[str, str], root: Path | None, stats: redis.Redis, paths: list[str]
) -> tuple[dict[str, Any], int, int]:
    """Redis flushed, a fresh server, then ``paths`` at c16 at once: the load's result with its timeline."""
    stats.flushall()  # the bench's own redis-server: cells, cards, tokens, states, limits
    port, pid = stack.enter_context(setup.api_server(env, root) if root else setup.api_server(env))
    result = setup.load_timed(port, CONCURRENCY, paths)
    return result, port, pid


def per_second(result: dict[str, Any]) -> list[tuple[int, int, float]]:
    """``(second, pages ended in it, p99 ms of those)`` from a timed load's timeline."""
    buckets: dict[int, list[float]] = {}
    for ended, latency in zip(result["ends_s"], result["latencies_ms"], strict=True):
        buckets.setdefault(int(ended), []).append(latency)
    return [(second, len(b), percentiles(b)["p99"]) for second, b in sorted(buckets.items())]


def full_speed_at(seconds: list[tuple[int, int, float]], steady_rate: float) -> float | None:
    """The first second from which every full second runs at >= FULL_SPEED_SHARE of steady."""
    full = seconds[:-1]  # the last bucket is partial
    for index in range(len(full)):
        if all(count >= FULL_SPEED_SHARE * steady_rate for _, count, _ in full[index:]):
            return float(full[index][0])
    return None


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
            [path for page in range(1, MAX_PAGES + 1) for path in first_page_paths(pop.creds, warm, page)],
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
            measure(first, port, pid, stats, first_page_paths(pop.creds, viewers), [], pop)
            repeat = Window("the same viewers' page 1 again", name, False)
            measure(repeat, port, pid, stats, first_page_paths(pop.creds, viewers), [], pop)
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
        paths = first_page_paths(pop.creds, viewers)
        with ExitStack() as stack:
            result, _, _ = cold_start(stack, env, root, stats, paths)
        seconds = per_second(result)
        steady = [w for w in windows if w.server == name and not w.moves]
        steady_rate = sum(w.pages / w.result["wall_s"] for w in steady) / max(1, len(steady))
        reached = full_speed_at(seconds, steady_rate)
        first_second = [
            lat for ended, lat in zip(result["ends_s"], result["latencies_ms"], strict=True) if ended < 1.0
        ]
        p99_first = percentiles(first_second or [0.0])["p99"]
        cold_lines.append(_cold_line(name, len(paths), result, p99_first, steady_rate, reached, seconds))
    for w in windows:
        rows.append(window_row(w, combined(cals[w.server])))
    return _render(quick, sizes, names, baseline, cals, rows, cpu_rows, cold_lines, windows)


def _cold_line(
    name: str,
    pages: int,
    result: dict[str, Any],
    p99_first: float,
    steady_rate: float,
    reached: float | None,
    seconds: list[tuple[int, int, float]],
) -> str:
    p = _pct(result)
    share = f"{FULL_SPEED_SHARE:.0%} of its steady rate ({steady_rate:.0f}/s)"
    speed = f"at >= {share} from second {reached:.0f}" if reached is not None else f"never at {share}"
    timeline = ", ".join(f"{s}s {n} / {p99:.0f}" for s, n, p99 in seconds[:COLD_SECS_SHOWN])
    return (
        f"- **{name}**: {pages} first pages at c{CONCURRENCY} right after a fresh start with Redis "
        f"empty (tokens, states, cells, cards all cold): p50 {p['p50']:.0f} ms, p99 {p['p99']:.0f} ms, "
        f"max {p['max']:.0f} ms; p99 of the first second {p99_first:.0f} ms; "
        f"{pages / result['wall_s']:.0f} pages/s overall; {speed}. Per second (pages, p99 ms): "
        f"{timeline}. Load average {load_average()}."
    )


def _median_ratio(windows: list[Window], name: str, key: str) -> str:
    def rate(w: Window) -> float:
        return w.pages / float(w.result["wall_s"])

    moving_ = [rate(w) for w in windows if w.server == name and w.moves]
    still = [rate(w) for w in windows if w.server == name and not w.moves]
    if not moving_ or not still:
        return "-"
    return f"{(sum(moving_) / len(moving_)) / (sum(still) / len(still)):.2f}"


def _render(
    quick: bool,
    sizes: Sizes,
    names: list[str],
    baseline: Path | None,
    cals: dict[str, list[Calibration]],
    rows: list[str],
    cpu_rows: list[str],
    cold_lines: list[str],
    windows: list[Window],
) -> list[str]:
    header = (
        "| window | server | pages | p50 ms | p99 ms | max ms | pages/s | server CPU ms/page | "
        "CPU in /api/time units | Redis µs/page | location reports during it: rate, ms | load avg |"
    )
    lines = [
        "### Headline: a city's steady state (20 km, c16)",
        "",
        f"Viewers drawn at random from all {setup.CITY_RADIUS_KM:.0f} km of the city, "
        f"{sizes.viewers_per_window:,} fresh ones a window, each reading 1-3 pages; "
        f"{MOVES_PER_SEC} location reports/s (each a ~{MOVE_KM} km step to a neighbouring cell) during the "
        "windows marked so, from their own open-loop process; tokens cached as a session's earlier requests "
        "leave them, each viewer's nearby state cold at their first page, cells and cards as a steady "
        "flow leaves them (warm-up, not measured: someone in every occupied cell reads pages 1-3, with "
        "moves). "
        + (
            f"`now` (this revision) and `baseline` ({baseline}) alternate window by window, the order "
            f"flipped every round ({sizes.rounds} rounds). "
            if baseline
            else ""
        )
        + "Calibration, each server before and after its windows: "
        + "; ".join(f"{name}: " + " then ".join(c.text() for c in cals[name]) for name in names)
        + ".",
        "",
        header,
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Pages/s with moves over pages/s without (mean of the windows): "
        + ", ".join(f"{name} {_median_ratio(windows, name, 'rate')}" for name in names)
        + ".",
        "",
        "### A viewer's first page against a repeat page (CPU, no moves)",
        "",
        header,
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *cpu_rows,
        "",
        "### Cold start",
        "",
        *cold_lines,
    ]
    if quick:
        lines.insert(0, "(quick smoke: a handful of pages, not figures)\n")
    return lines


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
