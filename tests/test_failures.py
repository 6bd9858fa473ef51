"""One failure mapping (``wsgi_app.failures``) for Flask, the native handlers and the container."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
import redis
import redis.asyncio as aioredis
import tornado.web
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from async_handlers.base import NativeApiHandler, NativeContext, spec_for_native_failure
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


class _FailingHandler(NativeApiHandler):
    """A native handler whose blocking job fails as a dependency outage would."""

    error: Exception

    async def get(self) -> None:
        def job() -> None:
            raise type(self).error

        await self.context.run_blocking(job)


async def _native_answer(app, error: Exception) -> tuple[int, dict]:
    handler = type("Failing", (_FailingHandler,), {"error": error})
    with ThreadPoolExecutor(max_workers=1) as pool:
        context = NativeContext(app, pool, aioredis.Redis())  # Redis is never reached here
        server = HTTPServer(tornado.web.Application([("/fail", handler, {"context": context})]))
        sock, port = bind_unused_port()
        server.add_sockets([sock])
        try:
            response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/fail", raise_error=False)
        finally:
            server.stop()
    return response.code, json.loads(response.body)


@pytest.mark.parametrize(("error", "spec"), CASES)
def test_a_native_handler_answers_the_mapped_envelope(app, error: Exception, spec: errors.ErrorSpec) -> None:
    """The native outage branches: a failure inside the worker-pool job reaches the client
    as the same envelope Flask answers, and no trace of it."""
    status, body = asyncio.run(_native_answer(app, error))
    assert (status, body["code"]) == (spec.http_status, spec.code)
    assert "Traceback" not in json.dumps(body)
