"""The hang watch: finds a Tornado process whose event loop stopped answering and has it replaced.

A process that is stopped (SIGSTOP), stuck in a blocking call on its loop or
spinning still has its listening socket: the kernel completes connections into
its backlog, so nginx keeps sending to it and every such request waits. This
small program, run by supervisord beside the Tornado processes, probes each
process's ``GET /api/time`` (answered on the loop, no Redis, no database, never
shed) every :data:`PROBE_INTERVAL_SECS`, all processes at once. A process that
accepts the connection and sends nothing back within :data:`PROBE_TIMEOUT_SECS`,
:data:`MISSES_BEFORE_KILL` times in a row, while supervisord has it RUNNING, is
sent SIGKILL through supervisord (a hung loop cannot drain, so SIGTERM would
only wait ``stopwaitsecs``); supervisord's ``autorestart`` starts a new one. The
kill resets the connections nginx had open to it: nginx resends the GETs and
the chat sends to another process (``proxy_next_upstream error``) and skips the
address while it restarts (``max_fails``/``fail_timeout``).

Invariants: a refused connection is never a hang (a process starting, draining
in a rolling restart, or dead: supervisord's business); any answer, a 503
included, is alive; one log line per kill. superlance's ``httpok`` does the same
on supervisord's ``TICK`` events, whose shortest period is 5 s and which
restarts with SIGTERM (waiting out the drain): this needs seconds, not tens.
"""

from __future__ import annotations

import argparse
import logging
import socket
import time
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

log = logging.getLogger("datingtoday.hang_watch")

PROBE_PATH = "/api/time"
PROBE_INTERVAL_SECS = 1.0
PROBE_TIMEOUT_SECS = 1.0
MISSES_BEFORE_KILL = 2
ANSWERED, REFUSED, SILENT = "answered", "refused", "silent"


def probe(address: str, port: int, timeout_secs: float = PROBE_TIMEOUT_SECS) -> str:
    """``answered`` (any bytes back), ``refused`` (no connection), or ``silent`` (a connection
    that stayed unanswered for ``timeout_secs``: the hang)."""
    try:
        conn = socket.create_connection((address, port), timeout=timeout_secs)
    except TimeoutError:
        return SILENT  # the backlog is full: nobody accepts
    except OSError:
        return REFUSED
    try:
        conn.settimeout(timeout_secs)
        conn.sendall(f"GET {PROBE_PATH} HTTP/1.1\r\nHost: hang-watch\r\nConnection: close\r\n\r\n".encode())
        return ANSWERED if conn.recv(1) else REFUSED
    except TimeoutError:
        return SILENT
    except OSError:
        return REFUSED
    finally:
        conn.close()


class HangWatch:
    def __init__(self, rpc: Any, address: str, names_by_port: dict[int, str]) -> None:
        self.rpc = rpc
        self.address = address
        self.names_by_port = names_by_port
        self.misses = dict.fromkeys(names_by_port, 0)
        self.kills = 0
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(names_by_port)), thread_name_prefix="probe")

    def round(self) -> None:
        """Probe every process once (in parallel) and replace those silent too often."""
        ports = list(self.names_by_port)
        for port, result in zip(ports, self.pool.map(lambda p: probe(self.address, p), ports), strict=True):
            self.misses[port] = self.misses[port] + 1 if result == SILENT else 0
            if self.misses[port] >= MISSES_BEFORE_KILL:
                self.misses[port] = 0
                self.replace(port)

    def replace(self, port: int) -> None:
        name = self.names_by_port[port]
        try:
            info = self.rpc.getProcessInfo(name)
            if info["statename"] != "RUNNING":
                return
            self.rpc.signalProcess(name, "KILL")
        except (OSError, xmlrpc.client.Fault) as err:
            log.warning("%s: could not be replaced through supervisord: %s", name, err)
            return
        self.kills += 1
        log.error(
            "%s (pid %s) did not answer %s %d times within %.1fs: SIGKILL, supervisord starts a new one",
            name,
            info["pid"],
            PROBE_PATH,
            MISSES_BEFORE_KILL,
            PROBE_TIMEOUT_SECS,
        )

    def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            self.round()
            time.sleep(max(0.0, PROBE_INTERVAL_SECS - (time.monotonic() - started)))


def supervisor_rpc(socket_path: str) -> Any:
    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.hang_watch", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="supervisord's unix socket")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--first-port", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--group", default="datingtoday")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ports = range(args.first_port, args.first_port + args.processes)
    names = {port: f"{args.group}:{args.group}-{port}" for port in ports}
    log.info("watching %d processes on %s every %.1fs", len(names), args.address, PROBE_INTERVAL_SECS)
    HangWatch(supervisor_rpc(args.socket), args.address, names).run_forever()


if __name__ == "__main__":
    main()
