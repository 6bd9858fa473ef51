"""Every failure answers the JSON envelope with the right status: never HTML, never a trace."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.helpers import ApiClient, FlaskTransport, SignedInUser
from wsgi_app import create_app, errors
from wsgi_app.services.auth.applications import AppCredentials


def _assert_error(reply: Any, status: int, code: int) -> None:
    assert reply.status == status, reply.body
    assert reply.body["code"] == code
    assert set(reply.body) == {"code", "msg"}
    assert isinstance(reply.body["msg"], str) and reply.body["msg"]
    assert "Traceback" not in reply.body["msg"]


def test_unknown_route(client) -> None:
    response = client.get("/api/no/such/thing")
    assert response.content_type == "application/json"
    _assert_error(FlaskTransport(client).send("GET", "/api/no/such/thing", None, None, {}), 404, 404)


def test_unknown_route_outside_api(client) -> None:
    _assert_error(FlaskTransport(client).send("GET", "/index.html", None, None, {}), 404, 404)


def test_wrong_method(api: ApiClient) -> None:
    reply = api.get("/api/auth/login", {"phone": "13900000000", "code": "123456"})
    _assert_error(reply, 405, 405)
    assert "POST" in reply.headers["Allow"]


def test_missing_parameter(api: ApiClient) -> None:
    reply = api.post("/api/auth/sendsms", {})
    _assert_error(reply, 400, 300)
    assert "phone" in reply.body["msg"]


def test_malformed_parameter(api: ApiClient, user: SignedInUser) -> None:
    reply = api.get("/api/user/show", {"peerId": "abc"}, user=user)
    _assert_error(reply, 400, 300)
    assert "peerId" in reply.body["msg"]


def test_unknown_user(api: ApiClient, user: SignedInUser) -> None:
    _assert_error(api.get("/api/user/show", {"peerId": "999999"}, user=user), 404, 501)


def test_oversize_body(api: ApiClient, app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    reply = api.post("/api/auth/sendsms", {"phone": "13900000000", "pad": "x" * 4096})
    _assert_error(reply, 413, 413)


def test_unhandled_exception_is_a_500_envelope(base_config: dict[str, Any], migrated_database: str) -> None:
    app = create_app(dict(base_config))

    @app.route("/api/test-crash")
    def crash() -> str:
        raise RuntimeError("secret internals")

    reply = FlaskTransport(app.test_client()).send("GET", "/api/test-crash", None, None, {})
    _assert_error(reply, 500, 500)
    assert "secret internals" not in reply.body["msg"]


def test_database_down_is_503(base_config: dict[str, Any], migrated_database: str) -> None:
    config = {**base_config, "SQLALCHEMY_DATABASE_URI": "sqlite:////nonexistent-dir/x/db.sqlite3"}
    app = create_app(config)
    creds = AppCredentials(1, "K", "S", "hmac-sha256")
    reply = ApiClient(FlaskTransport(app.test_client()), creds).post(
        "/api/auth/sendsms", {"phone": "13900000000"}
    )
    _assert_error(reply, 503, errors.DATABASE_UNAVAILABLE.code)
    health = FlaskTransport(app.test_client()).send("GET", "/api/health", None, None, {})
    _assert_error(health, 503, errors.DATABASE_UNAVAILABLE.code)
    assert "database" in health.body["msg"]


def test_redis_down_is_503(
    base_config: dict[str, Any], migrated_database: str, creds: AppCredentials
) -> None:
    app = create_app({**base_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    reply = ApiClient(FlaskTransport(app.test_client()), creds).post(
        "/api/auth/sendsms", {"phone": "13900000000"}
    )
    _assert_error(reply, 503, errors.REDIS_UNAVAILABLE.code)
    health = FlaskTransport(app.test_client()).send("GET", "/api/health", None, None, {})
    _assert_error(health, 503, errors.REDIS_UNAVAILABLE.code)
    assert "redis" in health.body["msg"]


def test_health_ok(client) -> None:
    reply = FlaskTransport(client).send("GET", "/api/health", None, None, {})
    assert reply.status == 200
    assert reply.body == {"code": 0, "msg": "success", "data": {"database": "ok", "redis": "ok"}}


def test_error_codes_are_unique_and_statuses_real() -> None:
    specs = errors.all_error_specs()
    assert len({s.code for s in specs}) == len(specs)
    # 414, 431, 504: nginx; 410: an event cursor past retention (events_resync)
    allowed = {400, 401, 403, 404, 405, 409, 410, 413, 414, 415, 429, 431, 500, 503, 504}
    assert {s.http_status for s in specs} <= allowed
    inherited = {300: 400, 501: 404, 502: 400, 503: 401, 504: 401, 505: 400}
    for code, status in inherited.items():
        assert errors.spec_for_code(code).http_status == status


def test_envelope_data_is_never_a_bare_list() -> None:
    with pytest.raises(TypeError):
        errors.success_body([1, 2])  # type: ignore[arg-type]
