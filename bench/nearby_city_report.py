"""The Markdown of the ``nearby`` case's city (:mod:`bench.nearby_city`): figures only.

Every CPU figure is given in ms and in units of the same run's ``GET /api/time``
(:mod:`bench.calibration`); the cold start as per-second pages and p99, and the second
from which it stays at :data:`FULL_SPEED_SHARE` of the same server's steady rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import nearby_setup as setup
from bench.calibration import Calibration
from bench.common import load_average, percentiles
from bench.nearby_city_load import MOVE_KM, MOVES_PER_SEC

CONCURRENCY = 16
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


def pct(result: dict[str, Any]) -> dict[str, float]:
    return percentiles(result.get("latencies_ms") or [0.0])


def window_row(w: Window, cal: Calibration) -> str:
    p = pct(w.result)
    ok = w.result["statuses"].get("200", 0)
    cpu_ms = 1000 * w.cpu_s / max(1, w.pages)
    moved = ""
    if w.moves_result:
        m = pct(w.moves_result)
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


def cold_line(
    name: str,
    pages: int,
    result: dict[str, Any],
    p99_first: float | None,  # None: no page ended in the first second
    steady_rate: float,
    reached: float | None,
    seconds: list[tuple[int, int, float]],
) -> str:
    p = pct(result)
    share = f"{FULL_SPEED_SHARE:.0%} of its steady rate ({steady_rate:.0f}/s)"
    speed = f"at >= {share} from second {reached:.0f}" if reached is not None else f"never at {share}"
    timeline = ", ".join(f"{s}s {n} / {p99:.0f}" for s, n, p99 in seconds[:COLD_SECS_SHOWN])
    return (
        f"- **{name}**: {pages} first pages at c{CONCURRENCY} right after a fresh start with Redis "
        f"empty (tokens, states, cells, cards all cold): p50 {p['p50']:.0f} ms, p99 {p['p99']:.0f} ms, "
        f"max {p['max']:.0f} ms; p99 of the first second "
        f"{'(no page ended in it)' if p99_first is None else f'{p99_first:.0f} ms'}; "
        f"{pages / result['wall_s']:.0f} pages/s overall; {speed}. Per second (pages, p99 ms): "
        f"{timeline}. Load average {load_average()}."
    )


def moving_ratio(windows: list[Window], name: str, key: str) -> str:
    def rate(w: Window) -> float:
        return w.pages / float(w.result["wall_s"])

    moving_ = [rate(w) for w in windows if w.server == name and w.moves]
    still = [rate(w) for w in windows if w.server == name and not w.moves]
    if not moving_ or not still:
        return "-"
    return f"{(sum(moving_) / len(moving_)) / (sum(still) / len(still)):.2f}"


def render(
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
        + ", ".join(f"{name} {moving_ratio(windows, name, 'rate')}" for name in names)
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
