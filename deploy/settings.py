"""The one place where the stack's deployment settings come from.

Every value has a default and an environment variable (``DT_*``); the same
:class:`StackSettings` renders the repo's ``supervisord.conf`` and
``nginx.conf`` for a real host (defaults: 4 processes on 8001-8004, nginx on
127.0.0.1:8080, run directory ``var/`` in the repo) and for tests (free ports,
a temporary run directory, their own DATABASE_URL/REDIS_URL in ``env``).

Invariants: ports are ``first_port .. first_port + processes - 1``; the
processes see ``os.environ`` overlaid with ``env`` (``env`` wins), so a real
host passes DATABASE_URL, REDIS_URL and secrets in the environment of
``python -m deploy start`` and nothing secret is written to a rendered file.

Past one host the topology is settings too, never code: ``app_hosts``
(``DT_APP_HOSTS``) are the addresses of every app host, each running the same
``processes`` on the same ports, and the edge nginx spreads over all of them
(empty: this host's ``bind_address`` only, the one-host default);
``redis_sentinels`` / ``redis_sentinel_master`` (``REDIS_SENTINELS``,
``REDIS_SENTINEL_MASTER``: the app's own variables, :mod:`wsgi_app.config`)
reach every process, which then finds the Redis primary through Sentinel.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wsgi_app.timeouts import DEFAULT_UPSTREAM_READ_TIMEOUT_SECS, poll_read_timeout_secs, timeout_problems

REPO_DIR = Path(__file__).resolve().parent.parent
# nginx skips a process for this long after a connection to it failed (``fail_timeout``,
# with ``max_fails=1``): rendered into nginx.conf, and waited out by a rolling restart.
UPSTREAM_FAIL_TIMEOUT_SECS = 2


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_tuple(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _default_nginx() -> str:
    return os.environ.get("DT_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"


class TimeoutConfigError(ValueError):
    """Settings under which nginx would cut requests the processes are still answering."""


@dataclass(frozen=True)
class StackSettings:
    """Everything that differs between a real host and a test run."""

    processes: int = 4  # DT_PROCESSES
    first_port: int = 8001  # DT_FIRST_PORT
    nginx_port: int = 8080  # DT_NGINX_PORT
    bind_address: str = "127.0.0.1"  # DT_BIND_ADDRESS (Tornado processes and nginx)
    run_dir: Path = REPO_DIR / "var"  # DT_RUN_DIR: rendered configs, logs, sockets, pid files
    upload_dir: Path = REPO_DIR / "instance" / "uploads"  # UPLOAD_FOLDER, served by nginx
    # CHAT_MEDIA_FOLDER: sent by nginx only after the app checked the reader
    chat_media_dir: Path = REPO_DIR / "instance" / "chat-media"
    python: str = sys.executable  # DT_PYTHON: the interpreter that runs tornado_server.py
    nginx_bin: str = field(default_factory=_default_nginx)  # DT_NGINX
    nginx_user: str = ""  # DT_NGINX_USER: worker user when nginx starts as root ("" = nginx's default)
    # Each waiting poll holds two connections in nginx (client + upstream).
    nginx_worker_connections: int = 20480  # DT_NGINX_WORKER_CONNECTIONS (per worker)
    upstream_keepalive: int = 128  # DT_UPSTREAM_KEEPALIVE (idle connections per nginx worker)
    # DT_UPSTREAM_MAX_CONNS: requests in flight per process (polls apart); beyond, nginx answers
    # 503 at once instead of queueing in a process whose CPU is saturated (docs/operations.md).
    upstream_max_conns: int = 32
    min_fds: int = 20000  # DT_MIN_FDS: supervisord's (and so each process's) descriptor limit
    start_secs: int = 5  # DT_START_SECS: supervisord startsecs (a process must stay up this long)
    drain_secs: float = 10.0  # SHUTDOWN_DRAIN_SECS of the processes
    ready_timeout_secs: float = 60.0  # DT_READY_TIMEOUT_SECS: start/restart give up after this
    # The one timeout rule (wsgi_app/timeouts.py): nginx's read timeouts, told to the processes.
    longpoll_timeout_secs: float = 50.0  # LONGPOLL_TIMEOUT_SECS of the processes
    # DT_POLL_READ_TIMEOUT_SECS: None = LONGPOLL_TIMEOUT_SECS + timeouts.POLL_READ_MARGIN_SECS
    poll_read_timeout_secs: float | None = None
    upstream_read_timeout_secs: float = DEFAULT_UPSTREAM_READ_TIMEOUT_SECS  # DT_UPSTREAM_READ_TIMEOUT_SECS
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the processes
    # DT_APP_HOSTS: every app host's address, comma-separated ("" = bind_address: one host).
    app_hosts: tuple[str, ...] = ()
    # REDIS_SENTINELS ("host:port,...") and REDIS_SENTINEL_MASTER: Redis behind Sentinel.
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = ""

    @classmethod
    def from_env(cls, **overrides: Any) -> StackSettings:
        """Defaults overlaid with ``DT_*`` variables, then with ``overrides``."""
        base = cls(
            processes=_env_int("DT_PROCESSES", cls.processes),
            first_port=_env_int("DT_FIRST_PORT", cls.first_port),
            nginx_port=_env_int("DT_NGINX_PORT", cls.nginx_port),
            bind_address=os.environ.get("DT_BIND_ADDRESS") or cls.bind_address,
            run_dir=Path(os.environ.get("DT_RUN_DIR") or REPO_DIR / "var").resolve(),
            upload_dir=Path(os.environ.get("UPLOAD_FOLDER") or REPO_DIR / "instance" / "uploads").resolve(),
            chat_media_dir=Path(
                os.environ.get("CHAT_MEDIA_FOLDER") or REPO_DIR / "instance" / "chat-media"
            ).resolve(),
            python=os.environ.get("DT_PYTHON") or sys.executable,
            nginx_user=os.environ.get("DT_NGINX_USER", ""),
            nginx_worker_connections=_env_int("DT_NGINX_WORKER_CONNECTIONS", cls.nginx_worker_connections),
            upstream_keepalive=_env_int("DT_UPSTREAM_KEEPALIVE", cls.upstream_keepalive),
            upstream_max_conns=_env_int("DT_UPSTREAM_MAX_CONNS", cls.upstream_max_conns),
            min_fds=_env_int("DT_MIN_FDS", cls.min_fds),
            start_secs=_env_int("DT_START_SECS", cls.start_secs),
            drain_secs=_env_float("SHUTDOWN_DRAIN_SECS", cls.drain_secs),
            ready_timeout_secs=_env_float("DT_READY_TIMEOUT_SECS", cls.ready_timeout_secs),
            longpoll_timeout_secs=_env_float("LONGPOLL_TIMEOUT_SECS", cls.longpoll_timeout_secs),
            poll_read_timeout_secs=_env_float("DT_POLL_READ_TIMEOUT_SECS", 0) or None,
            upstream_read_timeout_secs=_env_float(
                "DT_UPSTREAM_READ_TIMEOUT_SECS", cls.upstream_read_timeout_secs
            ),
            app_hosts=_env_tuple("DT_APP_HOSTS"),
            redis_sentinels=_env_tuple("REDIS_SENTINELS"),
            redis_sentinel_master=os.environ.get("REDIS_SENTINEL_MASTER", ""),
        )
        return replace(base, **overrides)

    @property
    def ports(self) -> list[int]:
        return list(range(self.first_port, self.first_port + self.processes))

    @property
    def upstream_addresses(self) -> list[str]:
        """``host:port`` of every process the edge nginx sends to: each app host's ports."""
        hosts = self.app_hosts or (self.bind_address,)
        return [f"{host}:{port}" for host in hosts for port in self.ports]

    @property
    def base_url(self) -> str:
        """The stack's public address: nginx."""
        return f"http://{self.bind_address}:{self.nginx_port}"

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def metrics_dir(self) -> Path:
        """PROMETHEUS_MULTIPROC_DIR of the processes: emptied before supervisord starts."""
        return self.run_dir / "metrics"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "log"

    @property
    def nginx_prefix(self) -> Path:
        return self.run_dir / "nginx"

    @property
    def effective_poll_read_timeout_secs(self) -> float:
        """nginx's read timeout for the long-poll location."""
        if self.poll_read_timeout_secs is not None:
            return self.poll_read_timeout_secs
        return poll_read_timeout_secs(self.effective_longpoll_timeout_secs)

    @property
    def effective_longpoll_timeout_secs(self) -> float:
        """The processes' poll timeout (``env`` wins over the settings, as for the processes)."""
        raw = self.env.get("LONGPOLL_TIMEOUT_SECS")
        return float(raw) if raw else self.longpoll_timeout_secs

    def timeout_problems(self) -> list[str]:
        """What nginx would cut with these settings (empty: sound); the processes check it too."""
        return timeout_problems(
            self.effective_longpoll_timeout_secs,
            self.effective_poll_read_timeout_secs,
            self.upstream_read_timeout_secs,
        )

    def process_env(self) -> dict[str, str]:
        """The environment supervisord (and so every process) starts with: nginx's read timeouts
        included, so each process refuses a poll timeout nginx would cut (wsgi_app/timeouts.py),
        and the Redis topology when Sentinel is configured."""
        topology = {}
        if self.redis_sentinels:
            topology["REDIS_SENTINELS"] = ",".join(self.redis_sentinels)
        if self.redis_sentinel_master:
            topology["REDIS_SENTINEL_MASTER"] = self.redis_sentinel_master
        return {
            **os.environ,
            "LONGPOLL_TIMEOUT_SECS": f"{self.longpoll_timeout_secs:g}",
            **topology,
            **self.env,
            "SHUTDOWN_DRAIN_SECS": str(self.drain_secs),
            "UPSTREAM_READ_TIMEOUT_SECS": f"{self.upstream_read_timeout_secs:g}",
            "UPSTREAM_POLL_READ_TIMEOUT_SECS": f"{self.effective_poll_read_timeout_secs:g}",
        }
