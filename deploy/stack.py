"""The whole stack on one host: supervisord (the Tornado processes) and nginx in front.

    stack = Stack(StackSettings.from_env())
    stack.start()            # render configs, start supervisord and nginx, wait until ready
    stack.status()           # per process: supervisor state, pid, health; nginx
    stack.rolling_restart()  # one process at a time, each ready before the next
    stack.stop()

Invariants: a process counts as started only when ``GET /api/health`` on its own
port answers 200; ``start`` returns only when every process and nginx answer;
``rolling_restart`` never has more than one process out of service, for its
supervisor nor for nginx (it stops one, starts it, waits for its health and then
for nginx's ``fail_timeout`` to pass, so nginx takes it back, then moves on) and
raises if a process does not come back within ``ready_timeout_secs``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from deploy.render import render_all
from deploy.settings import UPSTREAM_FAIL_TIMEOUT_SECS, StackSettings

GROUP = "datingtoday"
HEALTH_PATH = "/api/health"
HEALTH_TIMEOUT_SECS = 2.0
POLL_INTERVAL_SECS = 0.1
NGINX_QUIT_WAIT_SECS = 10.0
REJOIN_MARGIN_SECS = 0.5  # beyond nginx's fail_timeout, before the next process stops


class StackError(RuntimeError):
    """The stack did not reach the state asked for (the message says which part)."""


@dataclass
class ProcessStatus:
    name: str
    port: int
    state: str
    pid: int
    healthy: bool


@dataclass
class RestartRecord:
    name: str
    stop_secs: float  # SIGTERM until the process exited (the drain)
    ready_secs: float  # start until /api/health answered 200


def health_ok(url: str, timeout_secs: float = HEALTH_TIMEOUT_SECS) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_secs) as response:
            status: int = response.status
            return status == 200
    except (OSError, urllib.error.URLError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


class Stack:
    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings.from_env()

    # -- addresses ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def process_url(self, port: int) -> str:
        return f"http://{self.settings.bind_address}:{port}"

    def process_name(self, port: int) -> str:
        return f"{GROUP}:{GROUP}-{port}"

    # -- supervisord ----------------------------------------------------------------
    def _rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.settings.supervisor_socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def supervisord_pid(self) -> int:
        pid = _read_pid(self.settings.run_dir / "supervisord.pid")
        return pid if pid and _pid_alive(pid) else 0

    def nginx_pid(self) -> int:
        pid = _read_pid(self.settings.nginx_prefix / "nginx.pid")
        return pid if pid and _pid_alive(pid) else 0

    def _nginx(self, *args: str) -> None:
        conf = self.settings.run_dir / "nginx.conf"
        prefix = self.settings.nginx_prefix
        cmd = [self.settings.nginx_bin, "-p", f"{prefix}/", "-c", str(conf), "-e", f"{prefix}/logs/error.log"]
        result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise StackError(f"nginx {' '.join(args) or 'start'} failed: {result.stderr.strip()}")

    # -- operations -----------------------------------------------------------------
    def start(self) -> None:
        """Render the configs, start supervisord and nginx, return when all answer."""
        supervisor_conf, _ = render_all(self.settings)
        if not self.supervisord_pid():
            # Files of processes that no longer exist would be summed into /metrics forever.
            shutil.rmtree(self.settings.metrics_dir, ignore_errors=True)
            self.settings.metrics_dir.mkdir(parents=True)
            subprocess.run(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(supervisor_conf)],
                env=self.settings.process_env(),
                check=True,
                timeout=30,
            )
        else:
            self._rpc().startAllProcesses(False)
        self._wait_until(self._all_processes_ready, "every process answering /api/health")
        self._nginx("-t", "-q")
        if self.nginx_pid():
            self._nginx("-s", "reload")
        else:
            self._nginx()
        self._wait_until(lambda: health_ok(self.base_url + HEALTH_PATH), "nginx answering /api/health")

    def status(self) -> dict[str, Any]:
        processes: list[ProcessStatus] = []
        info_by_name: dict[str, dict[str, Any]] = {}
        if self.supervisord_pid():
            try:
                info_by_name = {f"{i['group']}:{i['name']}": i for i in self._rpc().getAllProcessInfo()}
            except (OSError, xmlrpc.client.Fault):
                info_by_name = {}
        for port in self.settings.ports:
            info = info_by_name.get(self.process_name(port), {})
            processes.append(
                ProcessStatus(
                    name=self.process_name(port),
                    port=port,
                    state=info.get("statename", "ABSENT"),
                    pid=info.get("pid", 0),
                    healthy=health_ok(self.process_url(port) + HEALTH_PATH),
                )
            )
        return {
            "supervisord_pid": self.supervisord_pid(),
            "nginx_pid": self.nginx_pid(),
            "nginx_healthy": health_ok(self.base_url + HEALTH_PATH),
            "base_url": self.base_url,
            "processes": [vars(p) for p in processes],
        }

    def rolling_restart(self) -> list[RestartRecord]:
        """Restart every process, one at a time, each answering /api/health before the next."""
        records = []
        rpc = self._rpc()
        for port in self.settings.ports:
            name = self.process_name(port)
            began = time.monotonic()
            if rpc.getProcessInfo(name)["statename"] in ("RUNNING", "STARTING"):
                rpc.stopProcess(name, True)  # returns once the process has exited (drained)
            stopped = time.monotonic()
            rpc.startProcess(name, False)
            self._wait_until(
                lambda p=port: health_ok(self.process_url(p) + HEALTH_PATH), f"{name} answering /api/health"
            )
            ready = time.monotonic()
            records.append(RestartRecord(name, stopped - began, ready - stopped))
            # nginx may have marked it failed as late as just before it listened; until that
            # passes, stopping the next one could leave nginx no process to send to (503).
            time.sleep(max(0.0, ready + UPSTREAM_FAIL_TIMEOUT_SECS + REJOIN_MARGIN_SECS - time.monotonic()))
        return records

    def stop(self) -> None:
        """Stop the processes (each drains), then nginx; a no-op for parts not running."""
        pid = self.supervisord_pid()
        if pid:
            try:
                self._rpc().shutdown()
            except (OSError, xmlrpc.client.Fault):
                os.kill(pid, signal.SIGTERM)
            self._wait_until(lambda: not _pid_alive(pid), "supervisord exiting", self._stop_timeout())
        pid = self.nginx_pid()
        if pid:
            os.kill(pid, signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self._wait_until(lambda: not _pid_alive(pid), "nginx exiting", NGINX_QUIT_WAIT_SECS)
            except StackError:
                os.kill(pid, signal.SIGTERM)
                self._wait_until(lambda: not _pid_alive(pid), "nginx exiting", NGINX_QUIT_WAIT_SECS)

    # -- helpers --------------------------------------------------------------------
    def _stop_timeout(self) -> float:
        return self.settings.drain_secs + 30.0

    def _all_processes_ready(self) -> bool:
        return all(health_ok(self.process_url(port) + HEALTH_PATH) for port in self.settings.ports)

    def _wait_until(self, condition: Any, what: str, timeout_secs: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_secs or self.settings.ready_timeout_secs)
        while not condition():
            if time.monotonic() > deadline:
                raise StackError(f"timed out waiting for {what} (logs: {self.settings.log_dir})")
            time.sleep(POLL_INTERVAL_SECS)
