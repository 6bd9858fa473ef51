"""The realtime case's servers: the database and Redis it runs on, ``tornado_server.py``
processes on their own ports, or the supervised stack behind nginx (``deploy.stack``).

Invariant: everything started here is stopped by the ``ExitStack`` it was started on.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import REPO_ROOT, child_pids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes], wait_secs: float) -> None:
    proc.terminate()
    proc.wait(wait_secs)


def wait_listening(port: int, proc: subprocess.Popen[bytes], secs: float = 30) -> None:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def backends(stack: ExitStack, workdir: Path) -> tuple[str, str]:
    db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        port = free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(_stop, proc, 10)
        wait_listening(port, proc)
        redis_url = f"redis://127.0.0.1:{port}/0"
    return db_url, redis_url


def server_env(db_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_hex(16),
        PAYMENT_PROVIDER_SECRET=secrets.token_hex(16),
        INSTANCE_PATH=str(workdir),
        UPLOAD_FOLDER=str(workdir / "uploads"),
        PYTHONPATH=str(REPO_ROOT),
        LOG_LEVEL="WARNING",
    )
    return env


def start_servers(stack: ExitStack, env: dict[str, str], count: int) -> tuple[list[int], list[int]]:
    """``(ports, pids)`` of ``count`` tornado_server.py processes.

    ``BENCH_SERVER_ROOT``: run the servers from another tree (e.g. an export of an
    older revision, for before/after figures). ``BENCH_PROFILE_DIR``: run each
    under cProfile (event-loop thread), written there when the process stops.
    """
    root = Path(os.environ.get("BENCH_SERVER_ROOT") or REPO_ROOT)
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    env = {**env, "PYTHONPATH": str(root)}
    ports, pids = [], []
    for _ in range(count):
        port = free_port()
        profiler = ["-m", "cProfile", "-o", f"{profile_dir}/server-{port}.prof"] if profile_dir else []
        proc = subprocess.Popen(
            [sys.executable, *profiler, str(root / "tornado_server.py"), "--port", str(port)],
            cwd=root,
            env=env,
        )
        stack.callback(_stop, proc, 30)
        wait_listening(port, proc)
        ports.append(port)
        pids.append(proc.pid)
    return ports, pids


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports, below the ephemeral range (a previous
    probe's thousands of client sockets linger there in TIME_WAIT)."""
    for _ in range(200):
        first = random.randrange(20_000, 30_000)
        if all(_port_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no block of free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_stack(
    stack: ExitStack, env: dict[str, str], count: int, workdir: Path
) -> tuple[list[int], list[int], list[int], int]:
    """The supervised stack behind nginx (``deploy.stack``): ``(ports, process pids, nginx pids,
    the first process's own port)`` (its ``/metrics`` sums the host's processes)."""
    from deploy import Stack, StackSettings

    settings = StackSettings.from_env(
        processes=count,
        first_port=free_port_block(count),
        nginx_port=free_port(),
        run_dir=workdir / "run",
        upload_dir=workdir / "uploads",
        env=env,
    )
    running = Stack(settings)
    stack.callback(running.stop)
    running.start()
    pids = [p["pid"] for p in running.status()["processes"]]
    nginx = running.nginx_pid()
    return [settings.nginx_port], pids, [nginx, *child_pids(nginx)], settings.first_port
