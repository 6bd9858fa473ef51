"""One failure mapping (``wsgi_app.failures``) for Flask, the native handlers and the container."""

from __future__ import annotations

import pymysql
import pytest
import redis
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from async_handlers.base import spec_for_native_failure
from wsgi_app import errors
from wsgi_app.failures import failure_spec


def _db_error(cls: type, code: int, invalidated: bool = False) -> Exception:
    return cls("SELECT 1", {}, pymysql.err.OperationalError(code, "x"), connection_invalidated=invalidated)


CASES = [
    (_db_error(OperationalError, 2003), errors.DATABASE_UNAVAILABLE),  # can't connect
    (_db_error(OperationalError, 2013), errors.DATABASE_UNAVAILABLE),  # lost connection
    (InterfaceError("SELECT 1", {}, pymysql.err.InterfaceError(0, "")), errors.DATABASE_UNAVAILABLE),
    (_db_error(ProgrammingError, 1064, invalidated=True), errors.DATABASE_UNAVAILABLE),
    (PoolTimeoutError("QueuePool limit reached"), errors.DATABASE_UNAVAILABLE),
    (_db_error(OperationalError, 1213), errors.DATABASE_BUSY),  # deadlock past the retries
    (_db_error(OperationalError, 1205), errors.DATABASE_BUSY),  # lock wait timeout
    (_db_error(ProgrammingError, 1064), errors.INTERNAL_ERROR),  # a bug, not an outage
    (redis.exceptions.ConnectionError(), errors.REDIS_UNAVAILABLE),
    (redis.exceptions.TimeoutError(), errors.REDIS_UNAVAILABLE),
    (ValueError(), errors.INTERNAL_ERROR),
]


@pytest.mark.parametrize(("error", "spec"), CASES)
def test_both_sides_map_a_failure_alike(error: Exception, spec: errors.ErrorSpec) -> None:
    assert failure_spec(error) is spec
    assert spec_for_native_failure(500, error) is spec


@pytest.mark.parametrize(("error", "spec"), CASES)
def test_flask_answers_the_mapped_envelope(app, error: Exception, spec: errors.ErrorSpec) -> None:
    @app.route(f"/_test/failure/{id(error)}")
    def fail() -> str:
        raise error

    response = app.test_client().get(f"/_test/failure/{id(error)}")
    assert (response.status_code, response.get_json()["code"]) == (spec.http_status, spec.code)
