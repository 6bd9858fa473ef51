"""``GET /api/events/poll``: the long-poll of a person's event stream, parked like the chat poll.

An :class:`EventPoll` is a :class:`~async_handlers.chat_poll.Poll` (same
parking as one small object on a detached stream, same registry, timeout
wheel, shutdown and answer writing) that reads the event stream
(:func:`wsgi_app.services.events.stream.events_after`) instead of messages.

* The cursor is the highest event id the device has; each device sends its
  own. A poll registers as a waiter *before* it reads, so an event committed
  between the read and the wait still wakes it. Every wake-up of its person
  (a message's announcement, a durable event's wake-up, the listener's
  catch-up after a Redis reconnect) makes it read the database again: Redis
  only wakes, the rows are the truth, so a lost wake-up delays, never loses,
  and a killed process loses nothing (the client re-polls anywhere with the
  same cursor).
* Ephemeral events (typing, presence) come inside wake-ups and are handed to
  waiting event polls (:meth:`EventPoll.push`); the poll answers them at once
  with the unchanged cursor. A person polling nowhere at that moment misses
  them (best effort: they are never stored).
* A cursor outside the kept events answers ``EVENTS_RESYNC``.

:class:`EventPollStart` is the path's fast path for ``tornado_dispatch``:
it shares the process's :class:`~async_handlers.chat_poll.PollParking` (so the
drain counts event polls' detached streams too).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado import httputil
from tornado.iostream import IOStream

from async_handlers.auth import authenticate_async
from async_handlers.base import NativeApiHandler
from async_handlers.chat_poll import _AWAKE, Poll, PollParking
from async_handlers.detached import DetachingRequest
from async_handlers.waiters import EPHEMERAL, EVICTED, GONE, TIMED_OUT
from wsgi_app import native_endpoints
from wsgi_app.errors import ApiError
from wsgi_app.params import parse_params
from wsgi_app.services.events import stream as event_stream

PATH = "/api/events/poll"
# Ephemeral events a parked poll holds until it answers (a flood answers the newest).
MAX_PENDING_EPHEMERAL = 20


class EventsPollHandler(NativeApiHandler):
    """The endpoint's declaration and its CORS preflight; a GET is an :class:`EventPoll`."""

    endpoint_specs = {"GET": native_endpoints.EVENTS_POLL}


class EventPollStart:
    """The fast path of ``GET /api/events/poll``: parks polls in the process's one parking."""

    def __init__(self, parking: PollParking) -> None:
        self.parking = parking

    def start(
        self,
        server_conn: object,
        request_conn: httputil.HTTPConnection,
        start_line: httputil.RequestStartLine,
    ) -> httputil.HTTPMessageDelegate | None:
        if start_line.method != "GET" or self.parking.is_draining():
            return None
        return DetachingRequest(self.park, server_conn, request_conn)

    def park(self, stream: IOStream, request: httputil.HTTPServerRequest, keep_alive: bool) -> None:
        self.parking.detached += 1
        EventPoll(self.parking, stream, request, keep_alive)


class EventPoll(Poll):
    """An event-stream poll: the chat poll's life cycle, the stream's reads, ephemeral pushes."""

    __slots__ = ("pending",)
    path = PATH

    def __init__(
        self, parking: PollParking, stream: IOStream, request: httputil.HTTPServerRequest, keep_alive: bool
    ) -> None:
        self.pending: list[dict[str, Any]] | None = None  # a list only once something was pushed
        super().__init__(parking, stream, request, keep_alive)

    def push(self, event: dict[str, Any]) -> bool:
        """An ephemeral event for this poll's person: answer it (with any durable ones) now."""
        if self.reason == GONE or self.user_id is None:
            return False
        if self.pending is None:
            self.pending = []
        self.pending.append(event)
        del self.pending[:-MAX_PENDING_EPHEMERAL]
        self.wake(EPHEMERAL)
        return True

    async def _check(
        self, params: dict[str, str] | ApiError, authorization: str | None, retry_id: str | None
    ) -> None:
        if isinstance(params, ApiError):
            raise params
        context = self.parking.context
        caller = await authenticate_async(
            context, "GET", PATH, params, authorization, need_user=True, retry_id=retry_id
        )
        args = parse_params(list(native_endpoints.EVENTS_POLL_PARAMS), params)
        del params
        self.user_id, self.limit = caller.signed_in().user_id, args["limit"]
        if args.get("cursor") is None:
            self._answer_batch(await context.run_blocking(event_stream.events_after, self.user_id, None, 1))
            return
        self.cursor = args["cursor"]
        timeout = float(context.flask_app.config["LONGPOLL_TIMEOUT_SECS"])
        if self.reason == GONE:
            return
        wheel = context.waiters.timeouts  # spread like the chat poll's (the wheel's spread_timeout)
        context.waiters.park(
            self.user_id, self, wheel.spread_timeout(asyncio.get_running_loop().time(), timeout)
        )
        await self._look()

    async def _look(self) -> None:
        context = self.parking.context
        assert self.user_id is not None
        while True:
            reason, self.reason = self.reason, _AWAKE
            if reason == GONE:
                self.reason = GONE
                return
            if reason in (TIMED_OUT, EVICTED) or context.waiters.closing:
                self._answer_batch({"events": [], "cursor": self.cursor, "has_more": False})
                return
            batch = await context.run_blocking(
                event_stream.events_after, self.user_id, self.cursor, self.limit
            )
            if batch["events"] or batch["cursor"] != self.cursor or self.pending or context.waiters.closing:
                self._answer_batch(batch)
                return
            if self.reason == _AWAKE:
                return  # parked until the next wake-up

    def _answer_batch(self, batch: dict[str, Any]) -> None:
        pending, self.pending = self.pending, None
        if pending:
            batch = {**batch, "events": [*batch["events"], *pending]}
        super()._answer_batch(batch)
