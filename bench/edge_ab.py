"""A/B of the HTTP edge: ``python -m bench.edge_ab`` (not a case; issue 20's budget check).

Runs the ``crud`` case's endpoints (own profile, another's profile, profile update,
native ``/api/time``) on this checkout's ``tornado_server.py`` and on a baseline
checkout's (``BENCH_EDGE_BASELINE``, required), one process each, both pinned to the
same CPU (a server's CPU follows its port: on different CPUs the two met different
neighbours, which moved CPU per request by ~10% between otherwise equal runs), alternated
window by window with the order rotated every round (:func:`bench.crud.run_rounds`),
so a shared machine's load falls on both alike. Prints the per-endpoint rows and the
baseline / now ratios (req/s, server CPU per request, p99). Knobs:
``BENCH_EDGE_ROUNDS`` (default 4).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from bench import common, crud, fixture
from bench.servers import Server, free_port, one_cpu_for


def main() -> None:
    baseline = Path(os.environ["BENCH_EDGE_BASELINE"]).resolve()
    rounds = int(os.environ.get("BENCH_EDGE_ROUNDS", "4"))
    cfg = crud.Settings(rounds=rounds, window_s=8, warmup_s=1, connections=16, demo_users=2000, callers=64)
    pop = fixture.prepare(cfg.demo_users, cfg.callers)
    print(f"machine: {common.machine_info()}; load average at start {common.load_average()}", flush=True)
    now, base = Server("tornado"), Server("tornado@baseline", baseline)
    while one_cpu_for(base.port) != one_cpu_for(now.port):  # both pinned to one CPU (CPU_AFFINITY=auto)
        base.port = free_port()
    print(f"both servers on CPU {one_cpu_for(now.port)}", flush=True)
    with ExitStack() as stack:
        servers = {"tornado": stack.enter_context(now), "tornado@baseline": stack.enter_context(base)}
        results, loads = crud.run_rounds(pop, servers, cfg)
    fixture.flush_redis()
    print(f"load average per round: {' / '.join(loads)}")
    for endpoint in crud.ENDPOINTS:
        for name in servers:
            if (name, endpoint.key) in results:
                print(crud._row(f"{endpoint.key}: {name}", results[(name, endpoint.key)]))
    print("\n".join(crud.compare_table(results, ["tornado@baseline"])))
    problems = crud.check(results)
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
