"""Redis and MariaDB server processes of the integration suite, stoppable and restartable.

Each runs on its own free port with its data in a temporary directory, so a
test may stop and start it without touching the machine's shared servers.
Invariant: ``start()`` returns only when the server answers (PING / ``SELECT 1``
over TCP); ``stop()`` returns only when the process has exited.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql
import redis

PORT_RANGE = (20000, 32000)  # below the kernel's ephemeral range, where clients' ports come from


def free_port_range(count: int) -> int:
    """A first port such that ``count`` consecutive ports are free right now (never ephemeral
    ports: an outgoing connection could take one between this check and the bind)."""
    for _ in range(200):
        first = random.randrange(*PORT_RANGE)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free port range")


READY_TIMEOUT_SECS = 60.0
POLL_SECS = 0.05


def _wait(condition, what: str, timeout_secs: float = READY_TIMEOUT_SECS) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL_SECS)


def _port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return False
    except OSError:
        return True


class ServerProcess:
    """A server process started with a fixed command line; restartable on the same port."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port_range(1)
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds it took."""
        began = time.monotonic()
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: self.proc is not None and self.proc.poll() is None and self.answers(), self.name)
        return time.monotonic() - began

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _wait(lambda: _port_closed(self.port), f"{self.name} port closing")


class RedisServer(ServerProcess):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


class MariaDBServer(ServerProcess):
    """``mariadbd`` with its own ``--datadir`` (made once by ``mariadb-install-db``)."""

    name = "mariadb"
    database = "dt_integration"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.datadir = workdir / "mariadb-data"
        self.install_secs = 0.0

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{self.database}"

    def install(self) -> None:
        began = time.monotonic()
        subprocess.run(
            [
                shutil.which("mariadb-install-db") or "mariadb-install-db", "--no-defaults",
                f"--datadir={self.datadir}", "--user=root", "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.install_secs = time.monotonic() - began

    def command(self) -> list[str]:
        return [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
            f"--datadir={self.datadir}", "--user=root", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.workdir}/mariadb.sock", f"--pid-file={self.workdir}/mariadb.pid",
            "--skip-log-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--innodb-print-all-deadlocks=ON",
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1)
        except pymysql.MySQLError:
            return False
        conn.close()
        return True

    def create_database(self) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database} CHARACTER SET utf8mb4")
        finally:
            conn.close()
