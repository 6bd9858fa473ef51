"""What a parked long-poll costs one server process: RSS, Python objects, CPU per park.

    python -m bench.poll_memory --polls 3000 --rounds 2 [--root /tmp/old_tree ...] [--trace]

For each round and each tree (``--root``, default: this checkout; several roots
alternate within a round), one ``tornado_server.py`` process is started on a
SQLite file and a private ``redis-server``. ``--polls`` users (seeded as the
``realtime`` case does, latest-message key 0) first poll without a cursor
(answered; warms the token cache) through a few kept-alive connections; then
each opens its own connection and polls with cursor 0 and the headers nginx
adds, so every poll parks without the database: the ``realtime`` case's
connect and park phases as nginx passes them to one process. Measured: RSS per
poll from the idle process (no connection yet) and from "first polls done" to
"all parked" (server CPU quiet), server CPU per park; with ``--trace`` the
process runs under ``tracemalloc`` and the top allocation sites of the park
phase are printed (RSS is then not comparable). Not part of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import REPO_ROOT, load_average
from bench.proc_stats import proc_cpu_secs, proc_rss_kb
from bench.realtime import seed
from bench.realtime_servers import backends, free_port, server_env, wait_listening
from wsgi_app.services.auth.signing import sign_params

CONNECT_CONCURRENCY = 500  # as bench.realtime_load
FIRST_POLL_CONNECTIONS = 32
# Runs the server with a SIGUSR1 handler that dumps a tracemalloc snapshot to $SNAPSHOT.
TRACED = """
import os, signal, sys, tracemalloc
sys.argv[0] = "tornado_server.py"
tracemalloc.start(12)
def dump(*_):
    tracemalloc.take_snapshot().dump(os.environ["SNAPSHOT"] + ".tmp")
    os.replace(os.environ["SNAPSHOT"] + ".tmp", os.environ["SNAPSHOT"])
signal.signal(signal.SIGUSR1, dump)
import tornado_server
tornado_server.main()
"""


def quiet(pid: int, secs: float = 0.6, limit: float = 60) -> None:
    started, before = time.monotonic(), proc_cpu_secs(pid)
    while time.monotonic() - started < limit:
        time.sleep(secs)
        now = proc_cpu_secs(pid)
        if now - before < 0.02:
            return
        before = now


class Poller:
    """One user's keep-alive connection: a first poll without cursor (answered), then a parked one."""

    def __init__(self, index: int, user: dict[str, Any], seeded: dict[str, Any]) -> None:
        self.index, self.user, self.seeded = index, user, seeded
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def head(self, cursor: str | None) -> bytes:
        path, ip = "/api/chat/poll", f"10.1.{self.index // 250}.{self.index % 250}"
        query = {"userId": str(self.user["user_id"]), "token": self.user["token"]}
        params = sign_params(
            {**query, **({"cursor": cursor} if cursor is not None else {})},
            appkey=self.seeded["appkey"],
            secret=self.seeded["secret"],
            sign_method=self.seeded["sign_method"],
            http_method="GET",
            path=path,
        )
        return (  # what nginx sends upstream
            f"GET {path}?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            f"X-Real-IP: {ip}\r\nX-Forwarded-For: {ip}\r\nX-Forwarded-Proto: http\r\n"
            f"X-Request-Id: {os.urandom(16).hex()}\r\nUser-Agent: okhttp/4.12.0\r\n"
            "Accept-Encoding: gzip\r\n\r\n"
        ).encode()

    async def first_poll(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.head(None))
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)

    async def park(self, port: int, gate: asyncio.Semaphore) -> None:
        """A new connection per parked poll, as nginx opens one upstream for each."""
        async with gate:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
            self.writer.write(self.head("0"))
            await self.writer.drain()

    def answered(self) -> bool:
        return self.reader is None or self.reader.at_eof() or bool(len(getattr(self.reader, "_buffer", b"")))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def snapshot(proc: subprocess.Popen[bytes], path: Path):  # type: ignore[no-untyped-def]
    import tracemalloc

    path.unlink(missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    for _ in range(200):
        time.sleep(0.1)
        if path.exists():
            return tracemalloc.Snapshot.load(str(path))
    raise RuntimeError("no snapshot")


def one_run(
    root: Path, env: dict[str, str], seeded: dict[str, Any], polls: int, trace: bool, workdir: Path
) -> str:
    port = free_port()
    snap_path = workdir / "snap.bin"
    run_env = {**env, "PYTHONPATH": str(root), "SNAPSHOT": str(snap_path), "LONGPOLL_TIMEOUT_SECS": "600"}
    argv = ["-c", TRACED] if trace else [str(root / "tornado_server.py")]
    proc = subprocess.Popen([sys.executable, *argv, "--port", str(port)], cwd=root, env=run_env)
    try:
        wait_listening(port, proc, 180)
        loop = asyncio.new_event_loop()
        quiet(proc.pid)
        rss_idle = proc_rss_kb(proc.pid)  # no client connection yet
        pollers = [Poller(i, u, seeded) for i, u in enumerate(seeded["pollers"][:polls])]

        async def first_polls() -> None:  # through a few kept-alive connections, as nginx's
            queue = list(pollers)

            async def worker() -> None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                while queue:
                    await queue.pop().first_poll(reader, writer)
                writer.close()

            await asyncio.gather(*(worker() for _ in range(FIRST_POLL_CONNECTIONS)))

        async def park_all() -> None:
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            await asyncio.gather(*(p.park(port, gate) for p in pollers))

        loop.run_until_complete(first_polls())
        quiet(proc.pid)
        snap0 = snapshot(proc, snap_path) if trace else None
        rss0, cpu0 = proc_rss_kb(proc.pid), proc_cpu_secs(proc.pid)
        loop.run_until_complete(park_all())
        loop.run_until_complete(asyncio.sleep(0.5))
        quiet(proc.pid)
        rss1, cpu1 = proc_rss_kb(proc.pid), proc_cpu_secs(proc.pid)
        loop.run_until_complete(asyncio.sleep(0.2))
        answered = sum(p.answered() for p in pollers)
        lines = [
            f"{root.name}: {polls} parked: RSS idle->parked +{(rss1 - rss_idle) / polls:.2f} KB/poll, "
            f"connected->parked +{(rss1 - rss0) / polls:.2f} KB/poll ({rss_idle // 1024}->{rss0 // 1024}->"
            f"{rss1 // 1024} MB), CPU {1000 * (cpu1 - cpu0) / polls:.3f} ms/park, "
            f"load {load_average()}; answered instead of parked: {answered}"
        ]
        if trace:
            assert snap0 is not None
            snap1 = snapshot(proc, snap_path)
            stats = snap1.compare_to(snap0, "lineno")
            total = sum(s.size_diff for s in stats)
            lines.append(f"  traced +{total / polls / 1024:.2f} KB/poll; top sites (bytes/poll, count/poll):")
            for s in stats[:25]:
                frame = s.traceback[0]
                where = f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
                lines.append(f"    {s.size_diff / polls:7.0f} {s.count_diff / polls:5.2f}  {where}")
        for p in pollers:
            p.close()
        loop.run_until_complete(asyncio.sleep(1.0))
        quiet(proc.pid)
        lines.append(f"  after disconnect: RSS {proc_rss_kb(proc.pid) // 1024} MB")
        loop.close()
        return "\n".join(lines)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", action="append", type=Path)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    roots = args.root or [REPO_ROOT]
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-pm-"))
        db_url, redis_url = backends(stack, workdir)
        env = server_env(db_url, redis_url, workdir)
        os.environ.update({k: env[k] for k in ("SECRET_KEY", "PAYMENT_PROVIDER_SECRET")})
        seeded = seed(env, args.polls, 1)
        for _ in range(args.rounds):
            for root in roots:
                print(one_run(root, env, seeded, args.polls, args.trace, workdir), flush=True)


if __name__ == "__main__":
    main()
