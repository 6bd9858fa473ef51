"""deploy/hang_watch.py: a process that accepts connections and never answers is replaced;
one that refuses (starting, draining) or answers (even slowly within the probe) is left alone."""

from __future__ import annotations

import socket
import threading
from typing import Any

from deploy import hang_watch
from deploy.hang_watch import ANSWERED, REFUSED, SILENT, HangWatch, probe


def _listening_but_hung() -> socket.socket:
    """A socket that listens (the kernel completes connections) but nobody accepts: SIGSTOP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def _answering() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class FakeSupervisor:
    def __init__(self) -> None:
        self.signals: list[tuple[str, str]] = []

    def getProcessInfo(self, name: str) -> dict[str, Any]:  # noqa: N802 (supervisord's API)
        return {"statename": "RUNNING", "pid": 4242}

    def signalProcess(self, name: str, signal: str) -> bool:  # noqa: N802
        self.signals.append((name, signal))
        return True


def test_probe_tells_hung_from_refused_from_answered() -> None:
    hung, alive = _listening_but_hung(), _answering()
    try:
        assert probe("127.0.0.1", hung.getsockname()[1], timeout_secs=0.3) == SILENT
        assert probe("127.0.0.1", alive.getsockname()[1], timeout_secs=0.3) == ANSWERED
        assert probe("127.0.0.1", _closed_port(), timeout_secs=0.3) == REFUSED
    finally:
        hung.close()
        alive.close()


def test_only_the_hung_process_is_killed_after_two_silent_rounds(monkeypatch) -> None:
    monkeypatch.setattr(hang_watch, "PROBE_TIMEOUT_SECS", 0.3)
    hung, alive = _listening_but_hung(), _answering()
    ports = {
        hung.getsockname()[1]: "dt:dt-hung",
        alive.getsockname()[1]: "dt:dt-alive",
        _closed_port(): "dt:dt-off",
    }
    rpc = FakeSupervisor()
    watch = HangWatch(rpc, "127.0.0.1", ports)
    monkeypatch.setattr(hang_watch, "probe", lambda address, port: probe(address, port, 0.3))
    try:
        watch.round()
        assert rpc.signals == []  # one silent probe is not yet a hang
        watch.round()
        assert rpc.signals == [("dt:dt-hung", "KILL")]
        assert watch.kills == 1
    finally:
        hung.close()
        alive.close()
