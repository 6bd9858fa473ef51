"""The canary of ``wsgi_app/private_apis.py``: each private use still does what it is used for.

An upgrade of Tornado or PyMySQL that renames or changes one fails here (the versions are
also pinned in ``pyproject.toml`` to those tested)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pymysql
import pytest
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from wsgi_app.database import SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS
from wsgi_app.private_apis import (
    apply_proxy_headers,
    peer_address,
    pymysql_server_status,
    pymysql_socket,
    unapply_proxy_headers,
)


class _Recorder(httputil.HTTPMessageDelegate):
    def __init__(self, connection: Any, seen: list[str | None]) -> None:
        self.connection = connection
        self.seen = seen

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> None:
        self.seen.append(peer_address(self.connection))
        apply_proxy_headers(self.connection, headers)
        self.seen.append(peer_address(self.connection))
        unapply_proxy_headers(self.connection)
        self.seen.append(peer_address(self.connection))

    def finish(self) -> None:
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 204, "No Content"), httputil.HTTPHeaders()
        )
        self.connection.finish()


class _Delegate(httputil.HTTPServerConnectionDelegate):
    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> _Recorder:
        return _Recorder(request_conn, self.seen)


def test_tornado_request_context_gives_the_peer_and_applies_proxy_headers() -> None:
    async def scenario() -> list[str | None]:
        delegate = _Delegate()
        server = HTTPServer(delegate, trusted_downstream=["10.0.0.1"])
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        server.stop()
        return delegate.seen

    assert asyncio.run(scenario()) == ["127.0.0.1", "203.0.113.9", "127.0.0.1"]


def test_pymysql_connection_keeps_its_status_and_socket_attributes() -> None:
    deferred = pymysql.connections.Connection(host="127.0.0.1", defer_connect=True)
    assert hasattr(deferred, "_sock") and pymysql_socket(deferred) is None
    assert pymysql_server_status(deferred) is None  # set by the handshake


def _mariadb() -> pymysql.connections.Connection:
    try:
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True, connect_timeout=2)
    except pymysql.err.OperationalError as err:
        if os.environ.get("REQUIRE_REAL_SERVICES"):
            raise
        pytest.skip(f"needs MariaDB on 127.0.0.1:3306: {err}")


def test_pymysql_server_status_follows_transactions_and_the_socket_is_its_own() -> None:
    conn = _mariadb()
    try:
        status = pymysql_server_status(conn)
        assert status is not None and status & SERVER_STATUS_AUTOCOMMIT
        assert not status & SERVER_STATUS_IN_TRANS
        conn.cursor().execute("BEGIN")
        assert (pymysql_server_status(conn) or 0) & SERVER_STATUS_IN_TRANS
        conn.rollback()
        assert not (pymysql_server_status(conn) or 0) & SERVER_STATUS_IN_TRANS
        sock = pymysql_socket(conn)
        assert isinstance(sock, socket.socket) and sock.getpeername()[1] == 3306
    finally:
        conn.close()
    assert pymysql_socket(conn) is None
