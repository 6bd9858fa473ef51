"""SIGTERM drain of a server process: nothing that arrives on an open connection fails.

A stopping process stops listening, serves Flask requests still arriving on
open keep-alive connections with ``Connection: close``, closes native ones
unanswered (nginx resends those GETs to another process), and exits only when
its connections are gone.
"""

from __future__ import annotations

import http.client
import signal
import socket
import time

import pytest

DEADLINE_SECS = 15.0


def _keep_alive_connection(port: int, path: str) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert (response.getheader("Connection") or "").lower() != "close"
    return conn


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return False
    except OSError:
        return True


def test_sigterm_serves_flask_requests_on_open_connections_and_closes_native_ones(spawn_server) -> None:
    server = spawn_server()
    flask_conn = _keep_alive_connection(server.port, "/api/health")
    native_conn = _keep_alive_connection(server.port, "/api/time")
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + DEADLINE_SECS
    while not _refuses_connections(server.port):
        assert time.monotonic() < deadline, "still listening after SIGTERM"
        time.sleep(0.05)

    flask_conn.request("GET", "/api/health")
    response = flask_conn.getresponse()
    assert response.status == 200, response.read()
    assert response.getheader("Connection") == "close"
    response.read()

    native_conn.request("GET", "/api/time")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        native_conn.getresponse()

    assert server.proc.wait(DEADLINE_SECS) == 0


def test_listen_backlog_is_the_kernels_somaxconn() -> None:
    from pathlib import Path

    from async_handlers.process_setup import SOMAXCONN_PATH, listen_backlog

    somaxconn = Path(SOMAXCONN_PATH)
    if somaxconn.exists():
        assert listen_backlog() == min(int(somaxconn.read_text()), 65535)
    assert listen_backlog() > 128  # Tornado's default backlog refused bursts of re-polls
