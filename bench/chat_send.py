"""``chat_send``: accepted chat sends per second through one, then four ``tornado_server.py``
processes (directly, then behind nginx as the supervised stack from the repo's configs).

Starts the server processes on the database and Redis of ``BENCH_DATABASE_URL`` /
``BENCH_REDIS_URL`` (else ``DATABASE_URL`` / ``REDIS_URL``; else a temporary
SQLite file and the in-process Redis stand-in), creates users with tokens
directly in the database, then drives ``POST /api/chat/send`` from an asyncio
client in this process: ``CONCURRENCY`` keep-alive connections, each request
signed like a real app, text messages between random pairs of users (so most
are first messages of a new pair, the case that used to deadlock). Reports
sends/s, failures by status (must be 0), latency percentiles, the load average
before and after, and the client's own CPU share (to show it was not the
bottleneck). Four processes need a real Redis (they share it). ``--quick`` sends
a few dozen messages through one process on whatever is configured.

With a local MariaDB it also reports MariaDB's CPU per send (the threads of the
bench database's connections, and the whole server: :mod:`bench.mariadb_cpu`).

``BENCH_SERVER_ROOT`` runs the server from another checkout (same schema), for
before/after figures with the same client. Run alone (``python -m bench.chat_send``),
``BENCH_PROCESSES`` sets the process count and ``BENCH_VIA_NGINX=1`` puts nginx in front.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.chat_send_setup import prepare, services, start_behind_nginx, start_direct
from bench.common import REPO_ROOT, load_average, machine_info, percentiles, process_tree_cpu_secs
from bench.mariadb_cpu import MariaDbCpu

PATH = "/api/chat/send"
USERS = 600  # the per-sender limit is 60 sends a minute: spread the load over many senders
CONCURRENCY = 32
DURATION_SECS = 15.0


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def signed_body(creds: dict[str, str], user: tuple[int, str], params: dict[str, Any]) -> bytes:
    from wsgi_app.services.auth.signing import sign_params

    full = {**{k: str(v) for k, v in params.items()}, "userId": str(user[0]), "token": user[1]}
    return urlencode(
        sign_params(
            full,
            appkey=creds["appkey"],
            secret=creds["secret"],
            sign_method=creds["sign_method"],
            http_method="POST",
            path=PATH,
        )
    ).encode()


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, dict[str, Any]]:
    writer.write(
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, json.loads(await reader.readexactly(length))


async def drive(
    ports: list[int],
    creds: dict[str, str],
    people: list[tuple[int, str]],
    concurrency: int,
    duration_secs: float,
    max_sends: int,
) -> tuple[Tally, float]:
    tally = Tally()
    sent = 0
    stop_at = time.monotonic() + duration_secs

    async def connection(port: int) -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at and sent < max_sends:
                sent += 1
                sender, recipient = random.sample(people, 2)
                body = signed_body(
                    creds,
                    sender,
                    {
                        "peerId": recipient[0],
                        "clientMsgId": secrets.token_hex(8),
                        "kind": "text",
                        "content": "hello",
                    },
                )
                started = time.perf_counter()
                status, reply = await _request(reader, writer, body)
                if status == 200 and reply.get("code") == 0:
                    tally.latencies_ms.append((time.perf_counter() - started) * 1000)
                else:
                    tally.fail(f"{status}/{reply.get('code')}")
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection(ports[i % len(ports)]) for i in range(concurrency)))
    return tally, time.monotonic() - started


def measure(
    quick: bool, root: Path = REPO_ROOT, processes: int = 1, via_nginx: bool = False
) -> dict[str, Any]:
    """Send for a while through ``processes`` server processes, directly or behind nginx."""
    db_url, redis_url, tmp = services()
    if processes > 1 and redis_url.startswith("memory:"):
        processes, via_nginx = 1, False  # the in-process Redis stand-in cannot be shared between processes
    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-srv-"))
    creds, people = prepare(db_url, redis_url, 40 if quick else USERS * processes)
    with ExitStack() as stack:
        start = start_behind_nginx if via_nginx else start_direct
        running = start(stack, db_url, redis_url, root, workdir, processes)
        load_before = load_average()
        database_cpu = MariaDbCpu(db_url)
        database_cpu.start()
        server_cpu_before = sum(process_tree_cpu_secs(pid) for pid in running.server_pids)
        nginx_cpu_before = sum(process_tree_cpu_secs(pid) for pid in running.nginx_pids)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        tally, elapsed = asyncio.run(
            drive(
                running.ports,
                creds,
                people,
                4 if quick else CONCURRENCY * processes,
                3.0 if quick else DURATION_SECS,
                40 if quick else 10**9,
            )
        )
        server_cpu = sum(process_tree_cpu_secs(pid) for pid in running.server_pids) - server_cpu_before
        nginx_cpu = sum(process_tree_cpu_secs(pid) for pid in running.nginx_pids) - nginx_cpu_before
        database = database_cpu.stop()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    sends = len(tally.latencies_ms)
    client_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "root": str(root),
        "processes": processes,
        "via": "nginx" if via_nginx else "direct",
        "database": db_url.split("@")[-1],
        "sends": len(tally.latencies_ms),
        "failures": tally.failures,
        "elapsed": elapsed,
        "rate": len(tally.latencies_ms) / elapsed,
        "latency": percentiles(tally.latencies_ms),
        "load_before": load_before,
        "load_after": load_average(),
        "client_cpu_share": client_cpu / elapsed,
        "server_cpu_ms_per_send": 1000 * server_cpu / max(1, sends),
        "nginx_cpu_ms_per_send": 1000 * nginx_cpu / max(1, sends) if via_nginx else None,
        # MariaDB's CPU: its threads serving the bench database, and the whole server process.
        "mariadb_cpu_ms_per_send": database and [1000 * secs / max(1, sends) for secs in database],
    }


def _row(figures: dict[str, Any]) -> str:
    lat = figures["latency"]
    failures = ", ".join(f"{k}: {v}" for k, v in figures["failures"].items()) or "none"
    if figures["failures"]:
        raise RuntimeError(f"chat sends failed: {failures}")
    mariadb = figures.get("mariadb_cpu_ms_per_send")
    mariadb_cell = f"{mariadb[0]:.2f} / {mariadb[1]:.2f}" if mariadb else "-"
    nginx = figures.get("nginx_cpu_ms_per_send")
    return (
        f"| {figures['processes']} {figures['via']} | {figures['sends']} | {figures['elapsed']:.1f} "
        f"| {figures['rate']:.0f} | "
        f"{failures} | {figures['server_cpu_ms_per_send']:.2f} | {'-' if nginx is None else f'{nginx:.2f}'} "
        f"| {mariadb_cell} | "
        f"{lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | "
        f"{figures['client_cpu_share']:.0%} of a core | "
        f"{figures['load_before']} / {figures['load_after']} |"
    )


def run(quick: bool) -> str:
    plans = ((1, False),) if quick else ((1, False), (4, False), (4, True))
    rows = [measure(quick, processes=n, via_nginx=via_nginx) for n, via_nginx in plans]
    return "\n".join(
        [
            "## Chat send throughput",
            "",
            f"Machine: {machine_info()}. Database `{rows[0]['database']}`. One row per number of",
            "`tornado_server.py` processes: `direct`, the client spreads its keep-alive connections over",
            "them; `nginx`, the supervised stack from the repo's configs, every send through nginx.",
            "Server CPU per send is the server processes' user+system time over the accepted sends:",
            "unlike sends/s it does not depend on how busy the shared machine is. MariaDB CPU:",
            "its threads serving the bench database / the whole server process (shared).",
            "",
            "| processes | sends | seconds | sends/s | failures | server CPU ms/send | nginx CPU ms/send "
            "| MariaDB CPU ms/send | p50 ms | p95 ms | p99 ms | max ms | client CPU "
            "| load avg before / after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *(_row(figures) for figures in rows),
            "",
        ]
    )


if __name__ == "__main__":
    root = Path(os.environ.get("BENCH_SERVER_ROOT") or REPO_ROOT)
    processes = int(os.environ.get("BENCH_PROCESSES") or 1)
    via_nginx = os.environ.get("BENCH_VIA_NGINX") == "1"
    print(json.dumps(measure("--quick" in sys.argv, root, processes, via_nginx), indent=1))
