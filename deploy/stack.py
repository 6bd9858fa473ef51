"""The whole stack on one host: supervisord (the Tornado processes) and nginx in front.

    stack = Stack(StackSettings.from_env())
    stack.start()            # preflight, render configs, start supervisord and nginx, wait until ready
    stack.status()           # per process: supervisor state, pid, health; nginx
    stack.prepare_restart()  # re-render from the current settings: what applies, or StackError
    stack.rolling_restart()  # one process at a time, each ready before the next
    stack.stop()
    stack.supervisorctl(["status"]), stack.nginx_command(["-s", "reload"])  # on the stack's configs

Invariants: ``start`` checks first (``deploy.preflight``: programs, ports, settings,
database, Redis) and starts nothing when a check fails; when a later step fails it
stops what it started (supervisord and its processes, nginx), so a failed start leaves
no process behind. A process counts as started only when ``GET /api/health`` on its own
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

from deploy import preflight, settings_record
from deploy.render import prepare_run_dir, render_all, render_texts
from deploy.settings import UPSTREAM_FAIL_TIMEOUT_SECS, StackSettings

GROUP = "datingtoday"
HEALTH_PATH = "/api/health"
HEALTH_TIMEOUT_SECS = 2.0
POLL_INTERVAL_SECS = 0.1
NGINX_QUIT_WAIT_SECS = 10.0
REJOIN_MARGIN_SECS = 0.5  # beyond nginx's fail_timeout, before the next process stops
FULL_RESTART_HINT = "apply it with `python -m deploy stop`, then `python -m deploy start`"
LOG_LINE_MAX_CHARS = 300  # of a process's last log line, quoted when it did not become ready


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

    def _nginx_argv(self) -> list[str]:
        """nginx on the stack's rendered config and prefix (never the system's)."""
        conf = self.settings.run_dir / "nginx.conf"
        prefix = self.settings.nginx_prefix
        return [
            self.settings.nginx_bin,
            "-p",
            f"{prefix}/",
            "-c",
            str(conf),
            "-e",
            f"{prefix}/logs/error.log",
        ]

    def _nginx(self, *args: str) -> None:
        try:
            result = subprocess.run([*self._nginx_argv(), *args], capture_output=True, text=True, timeout=30)
        except OSError as err:
            raise StackError(f"nginx {' '.join(args) or 'start'} failed: {err}") from None
        if result.returncode != 0:
            raise StackError(f"nginx {' '.join(args) or 'start'} failed: {result.stderr.strip()}")

    def _rendered(self, name: str) -> Path:
        path = self.settings.run_dir / name
        if not path.exists():
            raise StackError(
                f"no {path}: no stack was started with these settings (DT_RUN_DIR); python -m deploy start"
            )
        return path

    def supervisorctl(self, args: list[str]) -> int:
        """``supervisorctl`` on the stack's rendered config; its exit status."""
        conf = self._rendered("supervisord.conf")
        return subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args]
        ).returncode

    def nginx_command(self, args: list[str]) -> int:
        """``nginx ARGS`` (``-s reload``, ``-t``, ...) on the stack's rendered config; its exit status."""
        self._rendered("nginx.conf")
        try:
            return subprocess.run([*self._nginx_argv(), *args]).returncode
        except OSError as err:
            raise StackError(f"nginx: {err}") from None

    # -- operations -----------------------------------------------------------------
    def start(self) -> None:
        """Check, render the configs, start supervisord and nginx, return when all answer.

        Raises StackError (one line per cause) before starting anything when a check fails;
        after a later failure, stops whatever this call started before raising."""
        supervisord_was_running, nginx_was_running = bool(self.supervisord_pid()), bool(self.nginx_pid())
        problems = preflight.check(self.settings, stack_running=supervisord_was_running or nginx_was_running)
        if problems:
            raise StackError("\n".join(problems))
        try:
            self._start(supervisord_was_running, nginx_was_running)
        except BaseException as exc:  # KeyboardInterrupt too: never leave a half-started stack
            self._undo_start(stop_supervisord=not supervisord_was_running, stop_nginx=not nginx_was_running)
            if isinstance(exc, StackError | subprocess.SubprocessError | OSError):
                raise StackError(f"{exc} (stopped what this start had started)") from None
            raise

    def _undo_start(self, *, stop_supervisord: bool, stop_nginx: bool) -> None:
        for wanted, stop in ((stop_supervisord, self._stop_supervisord), (stop_nginx, self._stop_nginx)):
            if not wanted:
                continue
            try:
                stop()
            except (StackError, OSError) as err:  # still try the other part
                print(f"warning: while undoing the start: {err}", file=sys.stderr)

    def _start(self, supervisord_was_running: bool, nginx_was_running: bool) -> None:
        supervisor_conf, _ = render_all(self.settings)
        if not supervisord_was_running:
            # Files of processes that no longer exist would be summed into /metrics forever.
            shutil.rmtree(self.settings.metrics_dir, ignore_errors=True)
            self.settings.metrics_dir.mkdir(parents=True)
            subprocess.run(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(supervisor_conf)],
                env=self.settings.process_env(),
                check=True,
                timeout=30,
            )
            settings_record.write(self.settings)
        else:
            self._rpc().startAllProcesses(False)
        self._wait_until(
            self._all_processes_ready, "every process answering /api/health", explain=self._not_ready_report
        )
        self._nginx("-t", "-q")
        if nginx_was_running:
            self._nginx("-s", "reload")
        else:
            self._nginx()
        self._wait_until(lambda: health_ok(self.base_url + HEALTH_PATH), "nginx answering /api/health")

    def prepare_restart(self) -> list[str]:
        """Re-render the configs from the current settings before a rolling restart.

        Returns what was done, one line each (nginx.conf re-rendered and reloaded, or
        unchanged). Raises StackError, changing nothing, when a change cannot reach a running
        stack one process at a time: the processes' own settings (they keep the environment
        supervisord started with) or supervisord.conf (ports, process count, interpreter)."""
        if not self.supervisord_pid():
            raise StackError("the stack is not running here: python -m deploy start")
        changed = settings_record.changed_since_start(self.settings)
        if changed:
            raise StackError(
                f"{', '.join(changed)} changed since `deploy start`: the processes keep the environment "
                f"supervisord started with; {FULL_RESTART_HINT}"
            )
        texts = render_texts(self.settings)
        running_supervisor = self._rendered("supervisord.conf").read_text()
        if _meaningful(texts["supervisord.conf"]) != _meaningful(running_supervisor):
            raise StackError(
                "supervisord.conf renders differently now (a DT_* setting changed: "
                f"{_first_difference(running_supervisor, texts['supervisord.conf'])}); {FULL_RESTART_HINT}"
            )
        notes = [
            "re-rendered from the current settings: supervisord.conf and the processes' settings unchanged"
        ]
        nginx_conf = self._rendered("nginx.conf")
        old_nginx = nginx_conf.read_text()
        if _meaningful(texts["nginx.conf"]) == _meaningful(old_nginx):
            notes.append("nginx.conf unchanged")
            return notes
        prepare_run_dir(self.settings)
        nginx_conf.write_text(texts["nginx.conf"])
        try:
            self._nginx("-t", "-q")
            self._nginx("-s", "reload")
        except StackError:
            nginx_conf.write_text(old_nginx)
            raise
        notes.append(
            f"nginx.conf re-rendered ({_first_difference(old_nginx, texts['nginx.conf'])}) and reloaded"
        )
        return notes

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
        self._stop_supervisord()
        self._stop_nginx()

    def _stop_supervisord(self) -> None:
        pid = self.supervisord_pid()
        if pid:
            try:
                self._rpc().shutdown()
            except (OSError, xmlrpc.client.Fault):
                os.kill(pid, signal.SIGTERM)
            self._wait_until(lambda: not _pid_alive(pid), "supervisord exiting", self._stop_timeout())

    def _stop_nginx(self) -> None:
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

    def _not_ready_report(self) -> str:
        """Each process not answering /api/health, with the last line of its log."""
        parts = []
        for port in self.settings.ports:
            if health_ok(self.process_url(port) + HEALTH_PATH):
                continue
            log_path = self.settings.log_dir / f"{GROUP}-{port}.log"
            parts.append(f"{self.process_name(port)}: {_last_line(log_path) or 'nothing logged'}")
        return "; ".join(parts)

    def _wait_until(
        self, condition: Any, what: str, timeout_secs: float | None = None, explain: Any = None
    ) -> None:
        deadline = time.monotonic() + (timeout_secs or self.settings.ready_timeout_secs)
        while not condition():
            if time.monotonic() > deadline:
                detail = f": {explain()}" if explain is not None else ""
                raise StackError(f"timed out waiting for {what}{detail} (logs: {self.settings.log_dir})")
            time.sleep(POLL_INTERVAL_SECS)


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 8192))
            lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:LOG_LINE_MAX_CHARS] if lines else ""


def _meaningful(config: str) -> list[str]:
    """A rendered config's lines without comments and blank lines (a comment changes nothing)."""
    return [line.strip() for line in config.splitlines() if line.strip() and line.strip()[0] not in "#;"]


def _first_difference(old: str, new: str) -> str:
    """The first line that differs, as ``old -> new`` (stripped), for a one-line message."""
    for before, after in zip(_meaningful(old), _meaningful(new), strict=False):
        if before != after:
            return f"{before!r} -> {after!r}"
    return "lines added or removed"
