"""A small HTTP load generator, run as its own process: ``python -m bench.http_loadgen``.

Reads a JSON job on stdin: ``{"host", "port", "concurrency", "paths": [...]}``
(request paths with their query strings, already signed), sends every path once
with ``concurrency`` keep-alive connections (one thread each), and prints JSON:
per-request latencies (ms), statuses, wall time and this process's own CPU
seconds, so a run can show the generator was not the bottleneck; ``"timeline": true``
adds each request's end (seconds since the start, in the latencies' order).

With ``"rate"`` (requests/s) the job is open-loop instead: ``"requests"`` are
``[method, path, form body]``, request ``i`` is due at ``i / rate`` s, and its
latency counts from when it was due (a late start is waiting the caller sees);
it stops early once the file ``"stop_file"`` exists.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import sys
import threading
import time
from collections import Counter


def run(
    host: str, port: int, concurrency: int, paths: list[str], timeline: bool = False
) -> dict[str, object]:
    latencies: list[float] = []
    ends: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    cursor = iter(paths)

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        local: list[float] = []
        local_ends: list[float] = []
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
            ended = time.perf_counter()
            local.append((ended - started) * 1000)
            local_ends.append(ended - begun)
            local_status[response.status] += 1
        conn.close()
        with lock:
            latencies.extend(local)
            ends.extend(local_ends)
            statuses.update(local_status)

    begun = time.perf_counter()
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
    out: dict[str, object] = {
        "latencies_ms": latencies,
        "statuses": dict(statuses),
        "wall_s": wall,
        "cpu_s": cpu,
    }
    if timeline:
        out["ends_s"] = ends
    return out


def run_open(
    host: str, port: int, concurrency: int, rate: float, requests: list[list[str]], stop_file: str | None
) -> dict[str, object]:
    """Open loop: request ``i`` due at ``i / rate`` s; latency from when it was due."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    samples: list[str] = []  # the first few error answers, for the report
    cursor = iter(range(len(requests)))
    begun = time.perf_counter()

    def stopped() -> bool:
        return stop_file is not None and os.path.exists(stop_file)

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                index = next(cursor, None)
            if index is None or stopped():
                break
            due = begun + index / rate
            if due > time.perf_counter():
                time.sleep(due - time.perf_counter())
            method, path, body = requests[index]
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            with lock:
                if response.status >= 400 and len(samples) < 3:
                    samples.append(answer[:300].decode(errors="replace"))
                latencies.append((time.perf_counter() - due) * 1000)
                statuses[response.status] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begun
    return {"latencies_ms": latencies, "statuses": dict(statuses), "wall_s": wall, "error_samples": samples}


def main() -> None:
    job = json.load(sys.stdin)
    if "rate" in job:
        result = run_open(
            job["host"], job["port"], job["concurrency"], job["rate"], job["requests"], job.get("stop_file")
        )
    else:
        result = run(job["host"], job["port"], job["concurrency"], job["paths"], job.get("timeline", False))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
