"""Case ``crud``: the same Flask app under four servers, on signed, token-authenticated endpoints.

Servers (:mod:`bench.servers`): ``tornado_server.py``, gunicorn sync, gunicorn
gthread (8 threads) and granian (WSGI, 8 blocking threads), one process each, on
MariaDB + Redis of the bench's own (:mod:`bench.fixture`). Endpoints: your own
profile, another's profile (records a visit), a profile update, and the native
``GET /api/time`` on tornado as the ceiling of the process.

All servers run for the whole case; the load visits them in rounds of short
windows, the server order (and endpoint order) rotated every round, so drift of
a shared machine falls on all of them alike. Each window is preceded by an
untimed warm-up and gets its own freshly signed pool. The generator check runs
``/api/time`` with one and with two wrk threads: equal figures mean one wrk
thread is not what limits. Finally one endpoint is profiled under load with
py-spy (:mod:`bench.profiling`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench import common, fixture, profiling
from bench.loadgen import WrkResult, merge_results, raw_request, run_wrk, signed_pool
from bench.servers import PINNING_VARIANTS, SERVER_NAMES, Server, compare_checkouts

T = TypeVar("T")

POOL_RATE_PER_SEC = 6000  # signed requests per second of window: above any CRUD rate (own profile ~3,000)
GENERATOR_CHECK = "time-t2"


@dataclass(frozen=True)
class Settings:
    rounds: int
    window_s: int
    warmup_s: int
    connections: int
    demo_users: int
    callers: int


FULL = Settings(rounds=3, window_s=8, warmup_s=1, connections=16, demo_users=2000, callers=64)
QUICK = Settings(rounds=1, window_s=1, warmup_s=0, connections=4, demo_users=40, callers=4)


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    method: str
    path: str
    params: Callable[[fixture.Population, int], Mapping[str, str]] | None  # None: unsigned
    native_only: bool = False
    wrk_threads: int = 1


def _own(pop: fixture.Population, i: int) -> Mapping[str, str]:
    return pop.callers[i % len(pop.callers)].params()


def _peer(pop: fixture.Population, i: int) -> Mapping[str, str]:
    caller = pop.callers[i % len(pop.callers)]
    return {**caller.params(), "peerId": str(pop.peer_ids[(i * 7) % len(pop.peer_ids)])}


def _update(pop: fixture.Population, i: int) -> Mapping[str, str]:
    caller = pop.callers[i % len(pop.callers)]
    return {**caller.params(), "nickname": f"bench{i % 9973}", "height": str(150 + i % 50)}


ENDPOINTS = [
    Endpoint("own", "own profile `GET /api/user/show`", "GET", "/api/user/show", _own),
    Endpoint("peer", "another's profile (writes a visit)", "GET", "/api/user/show", _peer),
    Endpoint("update", "`POST /api/user/update`", "POST", "/api/user/update", _update),
    Endpoint("time", "native `GET /api/time` (ceiling)", "GET", "/api/time", None, native_only=True),
    Endpoint(GENERATOR_CHECK, "`GET /api/time`, wrk -t2", "GET", "/api/time", None, True, wrk_threads=2),
]
PROFILED = ENDPOINTS[0]


def rotate(items: list[T], by: int) -> list[T]:
    by %= len(items) or 1
    return items[by:] + items[:by]


def build_pool(pop: fixture.Population, endpoint: Endpoint, server: Server, seconds: int) -> list[bytes]:
    host = f"127.0.0.1:{server.port}"
    params = endpoint.params
    if params is None:
        return [raw_request(endpoint.method, endpoint.path, {}, host)]
    count = math.ceil(seconds * POOL_RATE_PER_SEC)
    return signed_pool(pop.signer, endpoint.method, endpoint.path, lambda i: params(pop, i), count, host)


def measure(
    pop: fixture.Population, endpoint: Endpoint, server: Server, cfg: Settings, seconds: int
) -> WrkResult:
    return run_wrk(
        server.url,
        build_pool(pop, endpoint, server, seconds),
        duration_s=seconds,
        connections=cfg.connections,
        threads=endpoint.wrk_threads,
        cycle=endpoint.params is None,
        cpu_of=server.cpu_secs,
    )


def endpoints_for(name: str) -> list[Endpoint]:
    if name == "tornado":
        return ENDPOINTS
    if name.startswith("tornado@") or name == "tornado+free":
        return [e for e in ENDPOINTS if e.key != GENERATOR_CHECK]
    return [e for e in ENDPOINTS if not e.native_only]


def run_rounds(
    pop: fixture.Population, servers: dict[str, Server], cfg: Settings
) -> tuple[dict[tuple[str, str], list[WrkResult]], list[str]]:
    results: dict[tuple[str, str], list[WrkResult]] = {}
    loads = []
    for round_no in range(cfg.rounds):
        loads.append(common.load_average())
        for name in rotate(list(servers), round_no):
            endpoints = endpoints_for(name)
            for endpoint in rotate(endpoints, round_no):
                if cfg.warmup_s:
                    measure(pop, endpoint, servers[name], cfg, cfg.warmup_s)
                result = measure(pop, endpoint, servers[name], cfg, cfg.window_s)
                results.setdefault((name, endpoint.key), []).append(result)
                tag = f"round {round_no + 1} {name:16} {endpoint.key:8}"
                print(f"   {tag} {result.rps:8.0f} req/s", flush=True)
    loads.append(common.load_average())
    return results, loads


def profile_endpoint(pop: fixture.Population, server: Server, cfg: Settings) -> str:
    out = common.BENCH_DIR / "_logs" / "crud-profile.txt"
    try:
        sampler = profiling.record(server.pid, cfg.window_s, out)
    except OSError as err:
        return f"py-spy could not start: {err}"
    result = measure(pop, PROFILED, server, cfg, cfg.window_s)
    _, stderr = sampler.communicate(timeout=cfg.window_s + 30)
    if sampler.returncode != 0 or not out.exists():
        return f"py-spy failed ({sampler.returncode}): {stderr.decode(errors='replace')[-300:]}"
    summary = profiling.summarise(out.read_text(), top=20)
    return (
        f"{PROFILED.label} on tornado_server.py, {result.rps:.0f} req/s while sampled at "
        f"{profiling.SAMPLE_RATE_HZ} Hz, server CPU {result.server_cpu_share:.2f} cores "
        f"(load average {common.load_average()}).\n\n{profiling.markdown(summary)}"
    )


def _row(name: str, windows: list[WrkResult]) -> str:
    merged = merge_results(windows)
    pct = common.histogram_percentiles(merged.histogram_us)
    rates = [w.rps for w in windows]
    spread = f"{min(rates):.0f}-{max(rates):.0f}" if len(rates) > 1 else "-"
    wrk_us = 1e6 * merged.wrk_cpu_s / merged.requests if merged.requests else 0.0
    server_us = 1e6 * merged.server_cpu_s / merged.requests if merged.requests else 0.0
    bad = merged.failures + merged.exhausted_threads
    latency = f"{pct['p50']:.1f} | {pct['p95']:.1f} | {pct['p99']:.1f}"
    per_core = merged.requests / merged.server_cpu_s if merged.server_cpu_s > 0 else 0.0
    server = f"{merged.server_cpu_share:.2f} | {server_us:,.0f} | {per_core:,.0f}"
    cpu = f"{server} | {merged.wrk_cpu_share:.2f} | {wrk_us:.0f}"
    return f"| {name} | {merged.rps:,.0f} | {spread} | {latency} | {bad} | {cpu} |"


def tables(results: Mapping[tuple[str, str], list[WrkResult]], names: list[str]) -> list[str]:
    lines = [
        "| endpoint / server | req/s | rounds | p50 ms | p95 ms | p99 ms | failures | server cores "
        "| server CPU us/req | req/s per server core | wrk cores | wrk CPU us/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        for name in names:
            if (name, endpoint.key) in results:
                lines.append(_row(f"{endpoint.key}: {name}", results[(name, endpoint.key)]))
    ceiling = merge_results(results.get(("tornado", "time"), [])).rps
    lines += [
        "",
        "| endpoint | req/s: tornado / best of gthread, granian (pinned or not) "
        "| p99: tornado / best of them (below 1 is better) | req/s: tornado / native ceiling |",
        "|---|---:|---:|---:|",
    ]
    series: dict[str, dict[str, list[float]]] = {}
    for endpoint in ENDPOINTS:
        if endpoint.native_only:
            continue
        merged = {n: merge_results(results[(n, endpoint.key)]) for n in names}
        p99 = {n: common.histogram_percentiles(m.histogram_us)["p99"] for n, m in merged.items()}
        rivals = [n for n in names if n.split("+")[0] in ("gunicorn-gthread", "granian")]
        best = max(merged[n].rps for n in rivals)
        best_p99 = min(p99[n] for n in rivals)
        tornado = merged["tornado"]
        lines.append(
            f"| {endpoint.label} | {common.format_ratio(common.ratio(tornado.rps, best))} "
            f"| {common.format_ratio(common.ratio(p99['tornado'], best_p99))} "
            f"| {common.format_ratio(common.ratio(tornado.rps, ceiling))} |"
        )
        series[endpoint.key] = {n: common.histogram_points(m.histogram_us) for n, m in merged.items()}
    lines.append("")
    for endpoint in ENDPOINTS:
        if endpoint.key in series:
            plot = common.plot_latencies(
                f"crud-{endpoint.key}", series[endpoint.key], f"crud: {endpoint.label.replace('`', '')}"
            )
            lines.append(f"![{endpoint.key} latency CDF]({Path(plot).as_posix()})")
    return lines + compare_table(results, [n for n in names if n.startswith("tornado@")])


def compare_table(results: Mapping[tuple[str, str], list[WrkResult]], others: list[str]) -> list[str]:
    """Each ``tornado@label`` against this checkout's tornado: req/s and server CPU per request."""
    if not others:
        return []
    lines = [
        "",
        "Before/after in this run (`BENCH_COMPARE`): other checkout / this one.",
        "",
        "| endpoint | server | req/s ratio | server CPU us/req ratio (below 1 is better) | p99 ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        if endpoint.key == GENERATOR_CHECK:
            continue
        base = merge_results(results[("tornado", endpoint.key)])
        for name in others:
            other = merge_results(results[(name, endpoint.key)])
            cpu = common.ratio(other.server_cpu_s / other.requests, base.server_cpu_s / base.requests)
            p99 = common.ratio(
                common.histogram_percentiles(other.histogram_us)["p99"],
                common.histogram_percentiles(base.histogram_us)["p99"],
            )
            lines.append(
                f"| {endpoint.key} | {name} | {common.format_ratio(common.ratio(other.rps, base.rps))} "
                f"| {common.format_ratio(cpu)} | {common.format_ratio(p99)} |"
            )
    return lines


def check(results: Mapping[tuple[str, str], list[WrkResult]]) -> list[str]:
    problems = []
    for (name, key), windows in results.items():
        merged = merge_results(windows)
        if merged.failures or merged.exhausted_threads or merged.requests == 0:
            problems.append(
                f"{key} on {name}: {merged.requests} requests, errors {merged.errors}, "
                f"{merged.exhausted_threads} exhausted pools"
            )
    return problems


def run(quick: bool) -> str:
    cfg = QUICK if quick else FULL
    pop = fixture.prepare(cfg.demo_users, cfg.callers)
    load_before = common.load_average()
    with ExitStack() as stack:
        names = SERVER_NAMES if quick else SERVER_NAMES + PINNING_VARIANTS
        servers = {name: stack.enter_context(Server(name)) for name in names}
        for name, checkout in compare_checkouts().items():
            servers[name] = stack.enter_context(Server(name, checkout))
        results, loads = run_rounds(pop, servers, cfg)
        profile = profile_endpoint(pop, servers["tornado"], cfg)
    fixture.flush_redis()
    problems = check(results)
    if problems and quick:
        raise RuntimeError("crud smoke failed: " + "; ".join(problems))
    return "\n".join(
        [
            "## crud: the same app under four servers",
            "",
            f"{cfg.rounds} round(s) of {cfg.window_s} s windows per server and endpoint (after a "
            f"{cfg.warmup_s} s warm-up each), server order rotated per round; wrk with "
            f"{cfg.connections} connections and pre-signed requests; one process per server, "
            f"8 threads where the server has threads; MariaDB + Redis; {cfg.demo_users} demo users, "
            f"{cfg.callers} signed-in callers. Load average at prepare {load_before}; at each round's "
            f"start and at the end: {' / '.join(loads)}.",
            "",
            "`rounds` is the spread of the per-round req/s; `failures` counts non-2xx answers, "
            "socket errors and exhausted pools (must be 0); cores = CPU seconds per wall second; "
            "`req/s per server core` = requests / server CPU seconds, the rate one fully busy core "
            "would give (less sensitive to a crowded machine than req/s); "
            f"`{GENERATOR_CHECK}` is the generator check (same ceiling with two wrk threads).",
            "",
            *(["**Problems:** " + "; ".join(problems), ""] if problems else []),
            *tables(results, list(servers)),
            "",
            "### Profile under load",
            "",
            profile,
        ]
    )
