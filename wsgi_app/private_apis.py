"""The one module that reaches under a dependency's public API, each use with its measured need.

Nothing else in the server reads a private attribute of Tornado, PyMySQL, Flask,
SQLAlchemy or redis-py (``tests/test_architecture.py`` checks it). Each use below
is pinned in ``pyproject.toml`` to the versions tested (``tornado>=6.4,<6.7``,
``pymysql>=1.1,<1.3``), and ``tests/test_private_apis.py`` is the canary that fails
on the upgrade that breaks one.

- Tornado's per-connection request context (``HTTP1Connection.context``, which
  Tornado itself calls unofficial): the peer's address, and applying the proxy
  headers of a trusted peer only. Tornado's public ``xheaders=True`` believes any
  peer and validates an address on every request, headers or not
  (``netutil.is_valid_ip``: a ``getaddrinfo`` call, ~6.5 µs here); the edge applies
  them only when a trusted peer sent one.
- PyMySQL's ``server_status`` (the flags of the server's last OK packet): COMMIT and
  ROLLBACK are sent only when a transaction is open (``wsgi_app.database``), and its
  ``_sock``: an idle connection the server closed is found by one zero-timeout
  ``select`` before a write, without a round trip.
"""

from __future__ import annotations

import socket
from typing import Any


def peer_address(connection: Any) -> str | None:
    """The address Tornado believes for this HTTP/1 connection's requests (or None)."""
    address = getattr(getattr(connection, "context", None), "remote_ip", None)
    return address if isinstance(address, str) else None


def apply_proxy_headers(connection: Any, headers: Any) -> None:
    """Tornado's own rewrite of ``remote_ip`` / ``protocol`` from ``X-Real-IP``,
    ``X-Forwarded-For``, ``X-Scheme``, ``X-Forwarded-Proto`` (skipping ``trusted_downstream``)."""
    connection.context._apply_xheaders(headers)


def unapply_proxy_headers(connection: Any) -> None:
    """Undo :func:`apply_proxy_headers` once the request is done (the next one may differ)."""
    connection.context._unapply_xheaders()


def pymysql_server_status(dbapi_connection: Any) -> int | None:
    """The ``SERVER_STATUS_*`` flags of the last OK packet, or None when unknown."""
    status = getattr(dbapi_connection, "server_status", None)
    return status if isinstance(status, int) else None


def pymysql_socket(dbapi_connection: Any) -> socket.socket | None:
    """The connection's socket, or None when it has none (closed, not PyMySQL)."""
    sock = getattr(dbapi_connection, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None
