"""Request hooks: request ids, CORS from the allow-list, one access-log line per request."""

from __future__ import annotations

import logging

import pytest
from flask import Flask


def test_request_id_is_generated(client) -> None:
    response = client.get("/api/health")
    assert len(response.headers["X-Request-Id"]) == 32


def test_incoming_request_id_is_kept(client) -> None:
    response = client.get("/api/health", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"


def test_malformed_request_id_is_replaced(client) -> None:
    response = client.get("/api/health", headers={"X-Request-Id": "bad id\x7f" + "x" * 100})
    assert response.headers["X-Request-Id"] != "bad id"
    assert len(response.headers["X-Request-Id"]) == 32


def test_request_id_on_errors_too(client) -> None:
    response = client.get("/api/nothing", headers={"X-Request-Id": "r1"})
    assert response.status_code == 404
    assert response.headers["X-Request-Id"] == "r1"


def test_cors_for_allowed_origin_only(app: Flask, client) -> None:
    app.config["CORS_ORIGINS"] = ["https://app.example"]
    ok = client.get("/api/health", headers={"Origin": "https://app.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert ok.headers["Vary"] == "Origin"
    other = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_preflight(app: Flask, client) -> None:
    app.config["CORS_ORIGINS"] = ["https://app.example"]
    response = client.options(
        "/api/auth/login",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_one_access_log_line_per_request(client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="datingtoday.access"):
        client.get("/api/health", headers={"X-Request-Id": "log-me"})
    lines = [r.getMessage() for r in caplog.records if r.name == "datingtoday.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /api/health 200 ")
    assert "ms err=- rid=log-me ip=127.0.0.1 uid=-" in lines[0]


def test_sessions_are_closed_on_teardown(app: Flask, client) -> None:
    from sqlalchemy.pool import QueuePool

    from wsgi_app.extensions import db

    client.get("/api/health")
    with app.app_context():
        pool = db.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0


def test_flask_alone_names_the_server_of_native_paths(client) -> None:
    from wsgi_app.native_endpoints import NATIVE_PATHS

    for path in NATIVE_PATHS:
        response = client.get(path)  # Flask's test client: the Flask half only, like `flask run`
        assert response.status_code == 404
        assert response.get_json() == {
            "code": 404,
            "msg": f"{path} is served by tornado_server.py (./scripts/run.sh), not by `flask run`",
        }
    assert client.get("/api/nothing").get_json()["msg"] == "no such endpoint"
