"""The base of every native Tornado handler: same checks and envelope as the Flask side.

Signature and token checks run on the event loop through
:func:`async_handlers.auth.authenticate_async`: the same sans-I/O core as the
Flask decorator (:mod:`wsgi_app.services.auth.core`) with ``redis.asyncio``;
the worker pool (inside an app context) only for a credentials or token cache
miss, so the event loop never waits on the database or sync Redis.
Errors render through :mod:`wsgi_app.errors`, like Flask's ``error_response``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis
import tornado.web
from flask import Flask
from sqlalchemy.engine import Engine
from tornado import httputil
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import IOLoop

from async_handlers.auth import authenticate_async
from async_handlers.redis_batch import RedisBatcher
from async_handlers.redis_wire import wire_for_url
from async_handlers.waiters import WaiterRegistry, WakeListener
from wsgi_app import errors, metrics, native_endpoints
from wsgi_app.declarations import EndpointSpec
from wsgi_app.errors import ApiError, ErrorSpec
from wsgi_app.extensions import db
from wsgi_app.failures import describe_failure, failure_spec
from wsgi_app.http_common import REQUEST_ID_HEADER, cors_headers, log_access, request_id_from
from wsgi_app.params import Param, merge_request_params, parse_params
from wsgi_app.redis_client import RedisTarget
from wsgi_app.services.auth.core import Caller, UserCaller

log = logging.getLogger("datingtoday.native")
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
T = TypeVar("T")
ShutdownHook = Callable[[], Awaitable[None]]


@dataclass
class NativeContext:
    """What native handlers share in one process: the Flask app (for its services
    and config), the worker pool for blocking calls, the async Redis client, the
    long-poll waiters and their listener, and the hooks to run on SIGTERM before
    the process exits."""

    flask_app: Flask
    executor: Executor
    redis: aioredis.Redis
    shutdown_hooks: list[ShutdownHook] = field(default_factory=list)
    # Long-poll waiters of this process, woken by its one pub/sub listener.
    waiters: WaiterRegistry = field(default_factory=WaiterRegistry)
    listener: WakeListener | None = None
    # Blocking writes of native handlers (a chat send): their own pool, so a woken
    # poll's read on ``executor`` never queues behind them. None: ``executor``.
    write_executor: Executor | None = None
    # Small on-loop Redis round trips of many requests, coalesced into shared pipelines.
    redis_batch: RedisBatcher = field(init=False)

    def __post_init__(self) -> None:
        lean_url = RedisTarget.from_config(self.flask_app.config).lean_wire_url()
        self.redis_batch = RedisBatcher(self.redis, wire_for_url(lean_url) if lean_url else None)
        self.waiters.max_per_user = int(self.flask_app.config["LONGPOLL_MAX_PER_USER"])

    @cached_property
    def engine(self) -> Engine:
        """The app's database engine, for blocking calls that need no app context."""
        with self.flask_app.app_context():
            return db.engine

    @property
    def sign_window_secs(self) -> int:
        return int(self.flask_app.config["SIGN_WINDOW_SECS"])

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker pool inside an app context."""
        return await self._run_in(self.executor, fn, *args)

    async def run_write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the write pool inside an app context."""
        return await self._run_in(self.write_executor or self.executor, fn, *args)

    async def _run_in(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        app = self.flask_app

        def call() -> T:
            with app.app_context():
                return fn(*args)

        return await self.run_in_pool(call, executor=executor)

    async def run_in_pool(self, fn: Callable[..., T], *args: Any, executor: Executor | None = None) -> T:
        """Run ``fn(*args)`` on a pool (default: the worker pool) as it is: no app context."""
        try:
            pending = IOLoop.current().run_in_executor(executor or self.executor, fn, *args)
        except RuntimeError:  # the pool is shut down: this process is stopping
            raise ApiError(errors.SHUTTING_DOWN) from None
        return await pending


def _decode(pairs: dict[str, list[bytes]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, values in pairs.items():
        for value in values:
            try:
                out.append((name, value.decode("utf-8")))
            except UnicodeDecodeError:
                raise ApiError(errors.PARAM_INVALID, f"{name}: not valid UTF-8") from None
    return out


class NativeApiHandler(tornado.web.RequestHandler):
    """JSON API handler; subclasses implement ``get``/``post`` with these helpers."""

    context: NativeContext
    # HTTP method -> declaration (summary, params, auth, data schema) for OpenAPI.
    endpoint_specs: dict[str, EndpointSpec] = {}

    def initialize(self, context: NativeContext) -> None:
        # Template helpers (a dict and a module namespace per request): never rendered here.
        self.ui = None  # type: ignore[assignment]
        self.context = context
        self.caller: Caller | None = None
        self.error_spec: ErrorSpec | None = None
        self.request_id = request_id_from(self.request.headers.get(REQUEST_ID_HEADER))

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", JSON_CONTENT_TYPE)

    def prepare(self) -> None:
        self.set_header(REQUEST_ID_HEADER, self.request_id)
        allowed = self.context.flask_app.config["CORS_ORIGINS"]
        for name, value in cors_headers(self.request.headers.get("Origin"), allowed).items():
            self.set_header(name, value)

    def options(self, *args: Any) -> None:
        self.set_status(204)
        self.finish()

    # -- parameters and auth ------------------------------------------------------
    def raw_params(self) -> dict[str, str]:
        return request_params(self.request)

    async def authenticate(self, *, need_user: bool = True) -> Caller:
        self.caller = await authenticate_async(
            self.context,
            self.request.method or "GET",
            self.request.path,
            self.raw_params(),
            self.request.headers.get("Authorization"),
            need_user=need_user,
            retry_id=self.request.headers.get("X-Request-Id"),
        )
        return self.caller

    async def authenticate_user(self) -> UserCaller:
        """The request check of a signed-in endpoint: a caller whose user id is never None."""
        return (await self.authenticate(need_user=True)).signed_in()

    def parse(self, specs: list[Param]) -> dict[str, Any]:
        return parse_params(specs, self.raw_params())

    # -- responses --------------------------------------------------------------
    def send_success(self, data: dict[str, Any] | None = None) -> None:
        self.finish(errors.dumps_envelope(errors.success_body(data)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado calls this for any exception; ``send_error`` cleared the headers."""
        self.prepare()
        exc_info = kwargs.get("exc_info", (None, None, None))
        self.error_spec, status, headers, body = render_failure(
            exc_info[1], status_code, self.request_id, exc_info
        )
        for name, value in headers.items():
            self.set_header(name, value)
        self.set_status(status)
        self.finish(body)

    def log_exception(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(value, ApiError):
            return  # an answered client error, not a server fault
        if value is not None and failure_spec(value) is not errors.INTERNAL_ERROR:
            return  # a dependency failure: write_error logs its one line (render_failure)
        super().log_exception(typ, value, tb)

    def on_finish(self) -> None:
        metrics.observe_request(
            self.request.path,  # a native route's fixed path: bounded
            self.request.method or "-",
            self.get_status(),
            self.error_spec.code if self.error_spec else None,
            self.request.request_time(),
        )
        log_access(
            self.request.method or "-",
            self.request.path,
            self.get_status(),
            1000.0 * self.request.request_time(),
            self.request_id,
            self.request.remote_ip,
            self.caller.user_id if self.caller else None,
            self.error_spec,
        )


def params_of(request: HTTPServerRequest) -> dict[str, str]:
    """Query and form-body parameters, the form body parsed as Tornado's handlers parse it
    (for a request answered without a ``RequestHandler``; a malformed body: ``BAD_REQUEST``)."""
    if request.body:
        try:
            httputil.parse_body_arguments(
                request.headers.get("Content-Type", ""),
                request.body,
                request.body_arguments,
                request.files,
                request.headers,
            )
        except httputil.HTTPInputError as err:
            raise ApiError(errors.BAD_REQUEST) from err
    return request_params(request)


def answer_headers(context: NativeContext, origin: str | None, request_id: str) -> dict[str, str]:
    """The headers every native answer starts from: JSON, the request id, CORS for an allowed origin."""
    return {
        "Content-Type": JSON_CONTENT_TYPE,
        REQUEST_ID_HEADER: request_id,
        **cors_headers(origin, context.flask_app.config["CORS_ORIGINS"]),
    }


def request_params(request: HTTPServerRequest) -> dict[str, str]:
    """The request's query and form-body parameters as the request check and ``parse_params``
    take them (a bad encoding: ``PARAM_INVALID``)."""
    return merge_request_params(_decode(request.query_arguments), _decode(request.body_arguments))


def render_failure(
    exc: BaseException | None, status_code: int, request_id: str, exc_info: Any = None
) -> tuple[ErrorSpec, int, dict[str, str], str]:
    """``(spec, status, extra headers, envelope)`` answering a failed native request, from the
    one error table; a server fault is logged (an :class:`ApiError`, or Tornado's 4xx such as a
    405 for a method the handler lacks, is the client's)."""
    if isinstance(exc, ApiError):
        return exc.spec, exc.http_status, dict(exc.headers), errors.dumps_envelope(exc.body())
    spec = spec_for_native_failure(status_code, exc)
    if spec is errors.INTERNAL_ERROR:
        log.error("unhandled error (request %s)", request_id, exc_info=exc_info or exc)
    elif exc is not None and spec.http_status >= 500:  # a dependency failure
        log.error("%s", describe_failure(spec, exc))
    return spec, spec.http_status, {}, errors.dumps_envelope(errors.error_body(spec))


def spec_for_native_failure(status_code: int, exc: BaseException | None) -> ErrorSpec:
    """Map a non-API failure on the native side to the one error table."""
    if exc is not None and (spec := failure_spec(exc)) is not errors.INTERNAL_ERROR:
        return spec
    if isinstance(exc, tornado.web.HTTPError):
        return {
            400: errors.BAD_REQUEST,
            404: errors.NOT_FOUND,
            405: errors.METHOD_NOT_ALLOWED,
            413: errors.PAYLOAD_TOO_LARGE,
        }.get(exc.status_code, errors.INTERNAL_ERROR if exc.status_code >= 500 else errors.BAD_REQUEST)
    if status_code == 405:
        return errors.METHOD_NOT_ALLOWED
    return errors.INTERNAL_ERROR


class ServerTimeHandler(NativeApiHandler):
    """``GET /api/time``: the server clock, for clients to calibrate ``timestamp``.

    Unsigned on purpose: a client whose clock is off cannot sign until it knows it.
    """

    endpoint_specs = {"GET": native_endpoints.SERVER_TIME}

    async def get(self) -> None:
        self.send_success({"timestamp": round(time.time(), 3)})
