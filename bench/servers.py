"""The servers a case compares: the same Flask app, one process each, on free ports.

``tornado`` is ``tornado_server.py`` (Flask on an 8-thread pool plus the native
handlers); ``gunicorn-sync`` one sync worker; ``gunicorn-gthread`` one worker
with 8 threads; ``granian`` one WSGI worker with 8 blocking threads. Each gets
the bench's database and Redis (:func:`bench.fixture.server_env`) and
``WSGI_THREADS=8`` (which sizes the SQLAlchemy pool), so only the server differs.
A :class:`Server` is a context manager: started and ready (``GET /api/health``
answers 200) on entry, stopped with SIGTERM (then SIGKILL) on exit.

Before/after in one run: ``BENCH_COMPARE=label=/path/to/checkout[,...]`` adds
``tornado@label``, ``tornado_server.py`` of that checkout (its code first on
``PYTHONPATH``, this venv's packages), alternated with the others like any
server. The checkouts must share this one's database schema.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.common import BENCH_DIR, REPO_ROOT, process_tree_cpu_secs
from bench.fixture import server_env

WSGI_THREADS = 8
READY_TIMEOUT_SECS = 30.0
STOP_TIMEOUT_SECS = 15.0
BIN = Path(sys.executable).parent

SERVER_NAMES = ("tornado", "gunicorn-sync", "gunicorn-gthread", "granian")
# The full run's variants: tornado_server.py keeps its threads on one CPU by default
# (CPU_AFFINITY=auto); "+free" runs it without, "+pinned" runs a rival under taskset
# on one CPU chosen the same way, so the comparison shows what pinning alone gives.
PINNING_VARIANTS = ("tornado+free", "gunicorn-gthread+pinned", "granian+pinned")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def compare_checkouts() -> dict[str, Path]:
    """``tornado@label`` -> checkout, from ``BENCH_COMPARE`` (empty when unset)."""
    result = {}
    for item in filter(None, os.environ.get("BENCH_COMPARE", "").split(",")):
        label, _, path = item.partition("=")
        checkout = Path(path).resolve()
        if not label or not (checkout / "tornado_server.py").exists():
            raise ValueError(f"BENCH_COMPARE item {item!r}: want label=/path/to/checkout")
        result[f"tornado@{label}"] = checkout
    return result


def one_cpu_for(port: int) -> int:
    """The CPU ``tornado_server.py`` with ``CPU_AFFINITY=auto`` picks for this port."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[port % len(allowed)]


def command_for(name: str, port: int, checkout: Path = REPO_ROOT) -> list[str]:
    if name.endswith("+pinned"):
        return [
            "taskset",
            "-c",
            str(one_cpu_for(port)),
            *command_for(name.removesuffix("+pinned"), port, checkout),
        ]
    if name == "tornado+free":
        name = "tornado"
    bind = f"127.0.0.1:{port}"
    factory = "wsgi_app:create_app()"
    if name == "tornado" or name.startswith("tornado@"):
        return [sys.executable, str(checkout / "tornado_server.py"), "--port", str(port)]
    if name == "gunicorn-sync":
        return [str(BIN / "gunicorn"), "-w", "1", "-k", "sync", "-b", bind, factory]
    if name == "gunicorn-gthread":
        threads = str(WSGI_THREADS)
        return [str(BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", threads, "-b", bind, factory]
    if name == "granian":
        return [
            str(BIN / "granian"),
            "--interface",
            "wsgi",
            "--factory",
            "--workers",
            "1",
            "--blocking-threads",
            str(WSGI_THREADS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-ws",
            "wsgi_app:create_app",
        ]
    raise ValueError(f"unknown server {name!r}")


class Server:
    def __init__(self, name: str, checkout: Path = REPO_ROOT) -> None:
        self.name = name
        self.checkout = checkout
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = BENCH_DIR / "_logs" / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_secs(self) -> float:
        return process_tree_cpu_secs(self.pid)

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command_for(self.name, self.port, self.checkout),
            cwd=self.checkout,
            env=server_env(
                PYTHONPATH=str(self.checkout), CPU_AFFINITY="off" if self.name == "tornado+free" else "auto"
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT_SECS}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
