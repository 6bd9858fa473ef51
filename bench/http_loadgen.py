"""A small HTTP load generator, run as its own process: ``python -m bench.http_loadgen``.

Reads a JSON job on stdin: ``{"host", "port", "concurrency", "paths": [...]}``
(request paths with their query strings, already signed), sends every path once
with ``concurrency`` keep-alive connections (one thread each), and prints JSON:
per-request latencies (ms), statuses, wall time and this process's own CPU
seconds, so a run can show the generator was not the bottleneck.
"""

from __future__ import annotations

import http.client
import json
import resource
import sys
import threading
import time
from collections import Counter


def run(host: str, port: int, concurrency: int, paths: list[str]) -> dict[str, object]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    cursor = iter(paths)

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        local: list[float] = []
        local_status: Counter[int] = Counter()
        while True:
            with lock:
                path = next(cursor, None)
            if path is None:
                break
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            local.append((time.perf_counter() - started) * 1000)
            local_status[response.status] += 1
        conn.close()
        with lock:
            latencies.extend(local)
            statuses.update(local_status)

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"latencies_ms": latencies, "statuses": dict(statuses), "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    job = json.load(sys.stdin)
    json.dump(run(job["host"], job["port"], job["concurrency"], job["paths"]), sys.stdout)


if __name__ == "__main__":
    main()
