"""Dependencies that restart: the Redis clients recover on their own; database waits are bounded.

The Redis test starts its own ``redis-server`` on a free port (never the shared
one), restarts it, and the very next command on each client must succeed:
pooled connections that died with the old server are replaced, not handed out.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from flask import Flask

from tests.integration.services import RedisServer
from wsgi_app import errors
from wsgi_app.config import engine_options, with_bounded_waits
from wsgi_app.redis_client import make_async_client, make_sync_client

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")


def test_sync_client_survives_a_redis_restart(own_redis: RedisServer) -> None:
    client = make_sync_client(own_redis.url)
    assert client.set("k", "1")
    own_redis.stop()
    own_redis.start()
    assert client.set("k", "2")  # the pooled connection died with the old server
    assert client.get("k") == "2"


def test_async_client_survives_a_redis_restart(own_redis: RedisServer) -> None:
    async def scenario() -> bytes | str | None:
        client = make_async_client(own_redis.url)
        try:
            await client.set("k", "1")
            own_redis.stop()
            own_redis.start()
            await client.set("k", "2")
            return await client.get("k")
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == "2"


def test_while_redis_is_down_a_command_raises_a_connection_error(own_redis: RedisServer) -> None:
    client = make_sync_client(own_redis.url)
    client.ping()
    own_redis.stop()
    with pytest.raises(Exception) as failure:  # after its bounded retries: the caller answers 521
        client.ping()
    assert failure.type.__name__ == "ConnectionError"


def test_database_waits_are_bounded() -> None:
    url = "mysql+pymysql://u@h/d"
    assert 0 < with_bounded_waits(url, engine_options(url, pool_size=10))["pool_timeout"] <= 5
    assert "pool_timeout" not in with_bounded_waits("sqlite:///x", engine_options("sqlite:///x", 4))


def test_pymysql_connects_are_bounded_and_skip_tls_on_loopback() -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from wsgi_app.db_connect import DB_CONNECT_TIMEOUT_SECS, SESSION_BOUNDS_SQL, bounded_pymysql_connect

    class Dialect:
        driver = "pymysql"

    local: dict = {"host": "127.0.0.1"}
    remote: dict = {"host": "db.internal", "connect_timeout": 7}
    bounded_pymysql_connect(Dialect(), None, (), local)
    bounded_pymysql_connect(Dialect(), None, (), remote)
    bounds = {"read_timeout": 4, "write_timeout": 4, "init_command": SESSION_BOUNDS_SQL}
    assert local == {
        "host": "127.0.0.1",
        "connect_timeout": DB_CONNECT_TIMEOUT_SECS,
        "ssl_disabled": True,
        **bounds,
    }
    assert remote == {"host": "db.internal", "connect_timeout": 7, **bounds}
    # Installed for real engines: a closed loopback port fails as a connection error.
    with pytest.raises(OperationalError):
        create_engine("mysql+pymysql://root@127.0.0.1:1/x").connect()


def test_no_pooled_connection_in_time_is_a_503_not_a_500(app: Flask) -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    @app.route("/_test/pool-timeout")
    def pool_timeout() -> str:
        raise PoolTimeoutError("QueuePool limit reached")

    response = app.test_client().get("/_test/pool-timeout")
    assert response.status_code == 503
    assert response.get_json()["code"] == errors.DATABASE_UNAVAILABLE.code


def test_a_session_that_cannot_roll_back_at_teardown_keeps_the_answer(app: Flask, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    original_close = Session.close
    failures = iter([OperationalError("ROLLBACK", {}, Exception("Lost connection during query"))])

    def close_once_failing(self: Session) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure  # the database went away after the response was made
        original_close(self)

    monkeypatch.setattr(Session, "close", close_once_failing)
    response = app.test_client().get("/api/health")
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_dependency_failure_outside_flask_is_a_503_envelope() -> None:
    import redis
    from sqlalchemy.exc import OperationalError

    from wsgi_app.failures import failure_spec as dependency_failure_spec

    lost = OperationalError("SELECT 1", {}, Exception("Lost connection"))
    assert dependency_failure_spec(lost) is errors.DATABASE_UNAVAILABLE
    assert dependency_failure_spec(redis.exceptions.ConnectionError()) is errors.REDIS_UNAVAILABLE
    assert dependency_failure_spec(ValueError()) is errors.INTERNAL_ERROR
