"""``GET /api/chat/poll``: the long-poll for new chat messages, parked as one small object.

The cursor is the highest message id the client has. A poll answers at once
when messages to the caller newer than the cursor exist; otherwise it parks in
the process's :class:`~async_handlers.waiters.WaiterRegistry` until a wake-up,
``LONGPOLL_TIMEOUT_SECS`` (then: an empty list and the same cursor), the client
going away (it is unregistered, nothing answered), eviction by a newer poll of
the same user beyond ``LONGPOLL_MAX_PER_USER`` (an empty batch), or shutdown
(answered at once, ``Connection: close``, so the client re-polls elsewhere).

Memory is the point of this module (issue 7: 10,000 parked polls a process).
``tornado_dispatch.PathDispatch`` hands a GET of this path to
:meth:`PollParking.start`: no ``RequestHandler``; Tornado reads the request
and then the stream is detached from its HTTP/1 machinery
(:mod:`async_handlers.detached`). What a parked poll keeps is one :class:`Poll`
(slots: the stream, ids, cursor, the few answer fields) registered under its
user, plus its entry in the registry's one timeout wheel (no loop timer per
poll). The request check and each look at Redis/the database run as a short
task that ends when the poll parks; a wake-up starts the next one. The answer
is written to the stream (same envelope, ``X-Request-Id``, CORS and security
headers as every native answer) and a kept-alive stream goes back to the
HTTP server for its next request.

The waiter is registered *before* Redis or the database is read, so a message
committed between the read and the wait still wakes it. A poll whose cursor
already equals the user's latest message id (the Redis key the send path
raises before it publishes, :func:`~wsgi_app.services.chat.events.latest_message_key`)
parks without reading the database; a missing key means "unknown: read it". A
poll woken for its user reads the database at once; the listener's catch-up
wake after a reconnect (``RECHECK``) checks the key first (after a Redis
failover the keys are not trusted for their TTL: the database is read). Timeouts are
spread by the registry's wheel (:meth:`~async_handlers.timeout_wheel.TimeoutWheel.spread_timeout`:
the last tenth of the timeout, up to its last half where the wheel is crowded) so
polls parked together do not come back together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import redis
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream

from async_handlers.auth import authenticate_async
from async_handlers.base import NativeApiHandler, NativeContext, answer_headers, params_of, render_failure
from async_handlers.detached import DetachingRequest, write_answer
from async_handlers.waiters import EVICTED, GONE, TIMED_OUT
from wsgi_app import errors, metrics, native_endpoints
from wsgi_app.errors import ApiError, ErrorSpec
from wsgi_app.http_common import (
    REQUEST_ID_HEADER,
    log_access,
    request_id_from,
)
from wsgi_app.params import parse_params
from wsgi_app.services.chat import messages as chat
from wsgi_app.services.chat.events import latest_message_key

PATH = "/api/chat/poll"
_AWAKE = "awake"  # Poll.reason while nothing has woken it


class ChatPollHandler(NativeApiHandler):
    """The endpoint's declaration and its CORS preflight (``OPTIONS``); a GET is a :class:`Poll`
    (``PathDispatch`` routes it to :meth:`PollParking.start`, except while draining)."""

    endpoint_specs = {"GET": native_endpoints.CHAT_POLL}


class PollParking:
    """The process's parking of polls: the context, whether it drains, and the HTTP server
    a kept-alive stream goes back to (set once it exists)."""

    def __init__(self, context: NativeContext, is_draining: Callable[[], bool]) -> None:
        self.context = context
        self.is_draining = is_draining
        self.server: HTTPServer | None = None
        # Polls holding a detached stream (the HTTP server no longer counts it): the drain waits for them too.
        self.detached = 0

    def start(
        self,
        server_conn: object,
        request_conn: httputil.HTTPConnection,
        start_line: httputil.RequestStartLine,
    ) -> httputil.HTTPMessageDelegate | None:
        """The delegate of a GET poll; None (the ordinary route) for any other method or when draining."""
        if start_line.method != "GET" or self.is_draining():
            return None
        return DetachingRequest(self.park, server_conn, request_conn)

    def park(self, stream: IOStream, request: httputil.HTTPServerRequest, keep_alive: bool) -> None:
        self.detached += 1  # until the Poll lets go of the stream (answered, or the client went away)
        Poll(self, stream, request, keep_alive)


class Poll:
    """A poll from its request check to its answer; while parked, all that is kept of it."""

    path = PATH  # the path it answers (metrics, access log); a subclass answers another

    __slots__ = (
        "parking",
        "stream",
        "http10",
        "keep_alive",
        "request_id",
        "origin",
        "remote_ip",
        "started",
        "user_id",
        "cursor",
        "limit",
        "reason",
        "task",
        "due",
    )

    def __init__(
        self, parking: PollParking, stream: IOStream, request: httputil.HTTPServerRequest, keep_alive: bool
    ) -> None:
        self.parking = parking
        self.stream: IOStream | None = stream
        self.http10 = request.version == "HTTP/1.0"
        self.keep_alive = keep_alive
        self.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        self.origin = request.headers.get("Origin")
        self.remote_ip = request.remote_ip
        self.started = time.time()
        self.user_id: int | None = None
        self.cursor = 0
        self.limit = 0
        self.reason: str | None = _AWAKE
        self.task: asyncio.Task[None] | None = None
        self.due = 0  # the registry's timeout wheel
        stream.set_close_callback(self._stream_closed)
        try:  # the request object is dropped here, not kept through the request check
            params: dict[str, str] | ApiError = params_of(request)
        except ApiError as exc:
            params = exc
        self._run(
            self._check(params, request.headers.get("Authorization"), request.headers.get(REQUEST_ID_HEADER))
        )

    # -- the registry's side ----------------------------------------------------
    def wake(self, reason: str | None) -> bool:
        if self.reason != _AWAKE:
            return False  # already told; the first reason counts
        self.reason = reason
        if self.task is None:  # parked: look (or answer) now
            self._run(self._look())
        return True

    def _stream_closed(self) -> None:
        self._release_stream()
        self.reason = GONE  # overrides any other reason: nobody to answer
        if self.task is None:
            self._unregister()

    # -- the work, as short tasks -----------------------------------------------
    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.get_running_loop().create_task(self._guarded(work))

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:  # answered from the one error table, like any native handler
            if isinstance(exc, ApiError) and exc.spec is errors.SHUTTING_DOWN:
                self._hang_up()  # the process stops: unanswered, nginx resends the GET elsewhere
            else:
                spec, status, headers, body = render_failure(exc, 500, self.request_id)
                self._answer(status, body, headers, spec)
        finally:
            self.task = None
        if self.reason == GONE:
            self._unregister()

    async def _check(
        self, params: dict[str, str] | ApiError, authorization: str | None, retry_id: str | None
    ) -> None:
        """The request check and parameters; then the first look, registered first."""
        if isinstance(params, ApiError):
            raise params
        context = self.parking.context
        caller = await authenticate_async(
            context, "GET", PATH, params, authorization, need_user=True, retry_id=retry_id
        )
        args = parse_params(list(native_endpoints.POLL_PARAMS), params)
        del params  # a parked poll keeps none of it
        self.user_id, self.limit = caller.signed_in().user_id, args["limit"]
        if args.get("cursor") is None:
            batch = await context.run_blocking(chat.messages_after, self.user_id, None, self.limit)
            self._answer_batch(batch)
            return
        self.cursor = args["cursor"]
        timeout = float(context.flask_app.config["LONGPOLL_TIMEOUT_SECS"])
        if self.reason == GONE:
            return
        wheel = context.waiters.timeouts
        context.waiters.park(
            self.user_id, self, wheel.spread_timeout(asyncio.get_running_loop().time(), timeout)
        )
        await self._look()

    async def _look(self) -> None:
        """Handle why it was woken (nothing: the first look); return when parked or answered."""
        context = self.parking.context
        assert self.user_id is not None
        while True:
            reason, self.reason = self.reason, _AWAKE
            if reason == GONE:
                self.reason = GONE
                return
            if reason in (TIMED_OUT, EVICTED) or context.waiters.closing:
                self._answer_batch(_empty(self.cursor))
                return
            if reason is None or not await self._cursor_is_latest(self.user_id, self.cursor):
                batch = await context.run_blocking(chat.messages_after, self.user_id, self.cursor, self.limit)
                if batch["list"] or context.waiters.closing:
                    self._answer_batch(batch)
                    return
            if self.reason == _AWAKE:
                return  # parked: no task, no frame until the next wake-up

    async def _cursor_is_latest(self, user_id: int, cursor: int) -> bool:
        """True when Redis says nothing newer than ``cursor`` was sent (no key: unknown; and
        never while the keys are untrusted after a failover, :mod:`async_handlers.primary_watch`)."""
        listener = self.parking.context.listener
        if listener is not None and not listener.primary.trusts_latest_keys():
            return False
        try:
            (latest,) = await self.parking.context.redis_batch.run([("GET", latest_message_key(user_id))])
        except redis.RedisError:
            return False
        return latest is not None and int(latest) <= cursor

    # -- the answer ---------------------------------------------------------------
    def _unregister(self) -> None:
        if self.user_id is not None:
            self.parking.context.waiters.discard(self.user_id, self)

    def _release_stream(self) -> IOStream | None:
        stream, self.stream = self.stream, None
        if stream is not None:
            self.parking.detached -= 1
        return stream

    def _hang_up(self) -> None:
        """Close the stream without an answer, as the drain refuses native GETs (docs/operations.md)."""
        self._unregister()
        self.reason = GONE
        stream = self._release_stream()
        if stream is not None:
            stream.set_close_callback(None)
            stream.close()

    def _answer_batch(self, batch: dict[str, Any]) -> None:
        self._answer(200, errors.dumps_envelope(errors.success_body(batch)), {}, None)

    def _answer(self, status: int, body: str, extra: dict[str, str], spec: ErrorSpec | None) -> None:
        """Write the whole answer to the stream; then serve its next request or close it."""
        self._unregister()
        self.reason = GONE  # answered: later wake-ups are no-ops
        stream = self._release_stream()
        if stream is None or stream.closed():
            return
        stream.set_close_callback(None)
        headers = {**answer_headers(self.parking.context, self.origin, self.request_id), **extra}
        elapsed = time.time() - self.started
        metrics.observe_request(self.path, "GET", status, spec.code if spec else None, elapsed)
        log_access(
            "GET", self.path, status, 1000.0 * elapsed, self.request_id, self.remote_ip, self.user_id, spec
        )
        write_answer(
            stream,
            status,
            headers,
            body.encode(),
            http10=self.http10,
            keep_alive=self.keep_alive,
            server=self.parking.server,
        )


def _empty(cursor: int) -> dict[str, Any]:
    return {"list": [], "cursor": cursor, "has_more": False}
