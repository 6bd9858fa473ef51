"""A/B of the nearby page on the million people: ``python -m bench.nearby_ab`` (not a case).

For the narrow question "did this change make a page cheaper?": the ``nearby`` case
runs every radius and the SQL alternative; this runs chosen cases only, for two
checkouts on the same data (``dt_nb_bench`` as loaded by the case, or
``BENCH_NEARBY_DATABASE_URL``), alternating ``now`` / ``baseline`` case by case
and round by round (the order flipped every round), so a shared machine's load
falls on both alike. Prints one Markdown row per measurement and the medians.

Knobs: ``BENCH_NEARBY_BASELINE`` (the other checkout, required), ``BENCH_AB_ROUNDS``
(default 4), ``BENCH_AB_CASES`` (``radius:page:concurrency:requests,...``, default
``2:1:16:4000``). Per measurement: latency percentiles, pages/s, server CPU ms/page
(utime+stime of ``/proc/<pid>/stat``), Redis µs/page, the server's garbage-collector
pauses over the measurement (``dt_gc_pause_seconds`` of its ``/metrics``: count, total
ms, how many over 5 ms) and the load average. ``BENCH_AB_PROFILE=/path/out.txt``: then
py-spy (``--gil``, raw) of the ``now`` server for 8 s under the first case, into that file.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from bench import nearby_setup as setup
from bench.common import load_average, percentiles
from bench.nearby import profile_server

GC_SAMPLE_WAIT_SECS = 1.2  # the server files GC pauses at its once-a-second sample
_GC_LINE_RE = re.compile(r"^dt_gc_pause_seconds_(sum|count|bucket)\{([^}]*)\} ([0-9.e+-]+)$", re.M)


def gc_totals(port: int) -> dict[str, float]:
    """The server's GC pauses so far: ``count``, ``ms`` (sum) and ``over_5ms`` (all generations)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {"count": 0.0, "ms": 0.0, "over_5ms": 0.0}
    for kind, labels, value in _GC_LINE_RE.findall(text):
        if kind == "count":
            out["count"] += float(value)
            out["over_5ms"] += float(value)
        elif kind == "sum":
            out["ms"] += 1000 * float(value)
        elif 'le="0.005"' in labels:
            out["over_5ms"] -= float(value)
    return out


def measure(port: int, pid: int, stats: redis.Redis, paths: list[str], concurrency: int) -> dict[str, Any]:
    setup.forget_rate_limits(stats)
    gc0, usec0, cpu0 = gc_totals(port), setup.redis_usec(stats), setup.server_cpu_s(pid)
    result = setup.load(port, concurrency, paths)
    usec1, cpu1 = setup.redis_usec(stats), setup.server_cpu_s(pid)
    time.sleep(GC_SAMPLE_WAIT_SECS)
    gc1 = gc_totals(port)
    count = len(paths)
    p = percentiles(result["latencies_ms"])
    return {
        **p,
        "ok": result["statuses"].get("200", 0),
        "rate": count / result["wall_s"],
        "cpu_ms": 1000 * (cpu1 - cpu0) / count,
        "redis_us": (usec1 - usec0) / count,
        "gc": {key: gc1[key] - gc0[key] for key in gc0},
        "load": load_average(),
    }


def row(label: str, name: str, m: dict[str, Any]) -> str:
    gc = m["gc"]
    return (
        f"| {label} | {name} | {m['ok']} | {m['p50']:.1f} | {m['p95']:.1f} | {m['p99']:.1f} | "
        f"{m['max']:.1f} | "
        f"{m['rate']:.0f} | {m['cpu_ms']:.3f} | {m['redis_us']:.0f} | {gc['count']:.0f} / {gc['ms']:.1f} / "
        f"{gc['over_5ms']:.0f} | {m['load']} |"
    )


def med(measurements: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(m[key] for m in measurements))


def parse_cases(text: str) -> list[tuple[int, int, int, int]]:
    cases = []
    for item in text.split(","):
        radius, page, concurrency, count = (int(part) for part in item.split(":"))
        cases.append((radius, page, concurrency, count))
    return cases


def main() -> None:
    from bench.common import ensure_bench_secrets

    ensure_bench_secrets()
    baseline = Path(os.environ["BENCH_NEARBY_BASELINE"])
    rounds = int(os.environ.get("BENCH_AB_ROUNDS", "4"))
    cases = parse_cases(os.environ.get("BENCH_AB_CASES", "2:1:16:4000"))
    database_url = os.environ.get(
        "BENCH_NEARBY_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/dt_nb_bench"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-nearby-ab-"))
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        redis_url = stack.enter_context(setup.redis_server())
        app = setup.bench_app(database_url, redis_url, tmp)
        first_id, _, existed = setup.load_people(app, 1_000_000)
        assert existed, "load the people first: python -m bench nearby"
        creds, callers = setup.credentials(app, first_id)
        env = setup.server_env(database_url, redis_url, tmp)
        stats = redis.Redis.from_url(redis_url)
        servers = [
            ("now", *stack.enter_context(setup.api_server(env))),
            ("baseline", *stack.enter_context(setup.api_server(env, baseline))),
        ]
        for _, port, _ in servers:  # warm: cells, every caller's token and state, cards
            for radius in sorted({case[0] for case in cases}):
                setup.forget_rate_limits(stats)
                setup.load(port, 16, setup.signed_paths(creds, callers, len(callers), radius, 1))
        print(
            "| case | server | ok | p50 | p95 | p99 | max | pages/s | CPU ms/page | Redis µs/page "
            "| GC count / ms / >5ms | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for index in range(rounds):
            for radius, page, concurrency, count in cases:
                label = f"{radius} km p{page} c{concurrency}"
                for name, port, pid in servers if index % 2 == 0 else servers[::-1]:
                    paths = setup.signed_paths(creds, callers, count, radius, page)
                    m = measure(port, pid, stats, paths, concurrency)
                    results.setdefault((label, name), []).append(m)
                    print(row(label, name, m), flush=True)
        if profile_out := os.environ.get("BENCH_AB_PROFILE"):
            radius, page, concurrency, count = cases[0]
            _, port, pid = servers[0]
            setup.forget_rate_limits(stats)
            paths = setup.signed_paths(creds, callers, 2 * count, radius, page)
            top = profile_server(pid, 8, Path(profile_out), lambda: setup.load(port, concurrency, paths))
            print("\n".join(top))
    print()
    print(
        "| case | now / baseline: CPU ms/page (median) | p99 ms (median) | pages/s (median) "
        "| CPU ratio, median of each round's pair |"
    )
    print("|---|---|---|---|---|")
    for label in dict.fromkeys(key[0] for key in results):
        now, base = results[(label, "now")], results[(label, "baseline")]
        cells = [
            f"{med(now, key):.3f} / {med(base, key):.3f} = {med(now, key) / med(base, key):.2f}"
            for key in ("cpu_ms", "p99", "rate")
        ]
        # The two measurements of a round ran back to back: their ratio shares the round's load.
        paired = statistics.median(a["cpu_ms"] / b["cpu_ms"] for a, b in zip(now, base, strict=True))
        print(f"| {label} | " + " | ".join(cells) + f" | {paired:.2f} |")


if __name__ == "__main__":
    main()
