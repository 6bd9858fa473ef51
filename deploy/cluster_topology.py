"""The simulated cluster's topology (hosts, addresses, ports) and its settings: one place.

Used by :mod:`deploy.cluster` (the command), :mod:`deploy.cluster_hosts` (what
runs on each host) and :mod:`deploy.cluster_faults`. Every host is a network
namespace ``dtc-<host>`` with the address ``10.213.0.<n>``; app hosts differ from
one host only by topology settings (:meth:`ClusterSettings.app_env`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.settings import REPO_DIR

PREFIX = "dtc"
SUBNET = "10.213.0"
BRIDGE = "br0"
SWITCH = f"{PREFIX}-switch"
HOSTS = {
    "edge": 10,
    "app1": 21,
    "app2": 22,
    "redis1": 31,
    "redis2": 32,
    "redis3": 33,
    "db1": 41,
    "db2": 42,
    "db3": 43,
    "client": 50,
}
APP_HOSTS = ("app1", "app2")
REDIS_HOSTS = ("redis1", "redis2", "redis3")
DB_HOSTS = ("db1", "db2", "db3")
REDIS_PORT = 6379
SENTINEL_PORT = 26379
SENTINEL_MASTER = "datingtoday"
DB_PORT = 3306
PROXY_PORT = 3307  # HAProxy on each app host, 127.0.0.1
DATABASE = "datingtoday"
APP_FIRST_PORT = 8001
EDGE_PORT = 8080
READY_TIMEOUT_SECS = 120.0
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
GALERA_FAILURE_DETECTION = (
    "evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;"
    "evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S"
)


class ClusterError(RuntimeError):
    """The simulated cluster did not reach the state asked for."""


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


def namespace(host: str) -> str:
    return f"{PREFIX}-{host}"


def run(*command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise ClusterError(f"{' '.join(command)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def in_ns(host: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", namespace(host), *command]


def wait_for(condition: object, what: str, timeout_secs: float = READY_TIMEOUT_SECS) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class ClusterSettings:
    run_dir: Path = field(default_factory=lambda: Path(os.environ.get("DT_CLUSTER_DIR") or "/tmp/dt-cluster"))
    processes_per_host: int = int(os.environ.get("DT_CLUSTER_PROCESSES") or 2)
    sentinel_down_after_ms: int = int(os.environ.get("DT_CLUSTER_DOWN_AFTER_MS") or 5000)
    python: str = sys.executable

    @property
    def sentinels(self) -> str:
        return ",".join(f"{address(h)}:{SENTINEL_PORT}" for h in REDIS_HOSTS)

    def app_env(self, host: str) -> dict[str, str]:
        """The environment of an app host's ``python -m deploy``: only topology settings differ."""
        run = self.run_dir / host
        return {
            **os.environ,
            "PYTHONPATH": str(REPO_DIR),
            "DEV_MODE": "1",
            "SMS_ECHO_CODE": "1",
            "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:{PROXY_PORT}/{DATABASE}",
            "REDIS_URL": "redis://sentinel-managed/0",
            "REDIS_SENTINELS": self.sentinels,
            "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
            "TRUSTED_PROXIES": f"{address('edge')},127.0.0.1",
            **self._stack_env(host),
            "INSTANCE_PATH": str(run / "instance"),
            "LONGPOLL_TIMEOUT_SECS": "20",
            "DT_START_SECS": "2",
        }

    def edge_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DT_APP_HOSTS": ",".join(address(h) for h in APP_HOSTS),
            **self._stack_env("edge"),
        }

    def _stack_env(self, host: str) -> dict[str, str]:
        """``deploy/settings.py``'s variables for a host: its address, ports and run directory."""
        run = self.run_dir / host
        return {
            "DT_BIND_ADDRESS": address(host),
            "DT_PROCESSES": str(self.processes_per_host),
            "DT_FIRST_PORT": str(APP_FIRST_PORT),
            "DT_NGINX_PORT": str(EDGE_PORT),
            "DT_RUN_DIR": str(run / "stack"),
            "UPLOAD_FOLDER": str(run / "uploads"),
            "CHAT_MEDIA_FOLDER": str(run / "chat-media"),
        }

    @property
    def base_url(self) -> str:
        return f"http://{address('edge')}:{EDGE_PORT}"
