"""CPU that a local MariaDB spent serving one database's connections (Linux ``/proc``).

MariaDB runs one thread per connection (``thread_handling=one-thread-per-connection``,
the default): the threads of the connections to the bench's database, found by
``information_schema.PROCESSLIST.TID``, did the bench's statements and nothing
else, so their user+system time is the database's CPU for the bench even when
other databases on the same server are busy (the whole ``mariadbd`` process is
reported beside it). Background threads (purge, page cleaner, log writer) are
not in the per-connection figure. Best effort: ``None`` when the database is not
a local MariaDB/MySQL we may read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_SERVER_NAMES = ("mariadbd", "mysqld")


def _server_pid() -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() in _SERVER_NAMES:
                    return int(proc.name)
            except OSError:
                continue
    return None


def _cpu_secs(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MariaDbCpu:
    """``start()`` before the measured sends, ``stop()`` after: ``(connection threads, whole
    server)`` CPU seconds in between, or None."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.pid = _server_pid() if "mysql" in db_url else None
        self._threads: dict[int, float] = {}
        self._process = 0.0

    def _thread_cpu(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                out[int(task.name)] = _cpu_secs(task / "stat")
            except (OSError, ValueError):
                continue
        return out

    def _bench_threads(self) -> list[int]:
        from sqlalchemy import create_engine, text

        from wsgi_app.config import normalise_database_url

        engine: Any = create_engine(normalise_database_url(self.db_url))
        try:
            with engine.connect() as conn:
                query = (
                    "SELECT TID FROM information_schema.PROCESSLIST"
                    " WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
                )
                return [int(row[0]) for row in conn.execute(text(query))]
        finally:
            engine.dispose()

    def start(self) -> None:
        if self.pid is None:
            return
        self._threads = self._thread_cpu()  # every thread: a cached one may serve a new connection
        self._process = _cpu_secs(Path(f"/proc/{self.pid}/stat"))

    def stop(self) -> tuple[float, float] | None:
        if self.pid is None:
            return None
        try:
            now = self._thread_cpu()
            threads = sum(now[t] - self._threads.get(t, 0.0) for t in self._bench_threads() if t in now)
            return threads, _cpu_secs(Path(f"/proc/{self.pid}/stat")) - self._process
        except Exception:  # noqa: BLE001 (best effort: no PROCESS privilege, no TID column, ...)
            return None
