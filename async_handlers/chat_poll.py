"""``GET /api/chat/poll``: the long-poll for new chat messages, on the event loop.

The cursor is the highest message id the client has. A poll answers at once
when messages to the caller newer than the cursor exist; otherwise it parks a
future in the process's :class:`~async_handlers.waiters.WaiterRegistry` and
waits until a wake-up, ``LONGPOLL_TIMEOUT_SECS`` (then: an empty list and the
same cursor), the client going away (the future is cancelled and removed), or
shutdown (answered at once, so the client re-polls another process).

The waiter is registered *before* Redis or the database is read, so a message
committed between the read and the wait still wakes it. A poll whose cursor
already equals the user's latest message id (the Redis key the send path
raises before it publishes, :func:`~wsgi_app.services.chat.events.latest_message_key`)
parks without reading the database; a missing key means "unknown: read it".
A poll woken for its user reads the database at once (no Redis check: the
key was raised before the wake-up was published); the listener's catch-up
wake after a reconnect (``RECHECK``) checks the key first, so a reconnect
does not send every parked poll to the database.
Together with the on-loop request check, such a poll never touches a thread.

Per parked poll: the handler, one future, one loop timer (the timeout, less up
to ``TIMEOUT_JITTER_FRACTION`` at random so polls parked together do not time
out together), and no copy of the parsed request: :func:`shed_request` drops
the arguments, the signed query string and the headers the answer does not
need. A client going away resolves the future (``GONE``); more than
``LONGPOLL_MAX_PER_USER`` polls of one user in this process answer the oldest
(``EVICTED``, an empty batch).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import redis
from tornado.httputil import HTTPServerRequest, RequestStartLine

from async_handlers.base import NativeApiHandler
from async_handlers.waiters import GONE, RECHECK
from wsgi_app import native_endpoints
from wsgi_app.services.chat import messages as chat
from wsgi_app.services.chat.events import latest_message_key

TIMEOUT_JITTER_FRACTION = 0.1
# Request headers a parked poll still needs (normalised names): the connection's keep-alive
# decision and the CORS headers of an error answer.
KEPT_HEADERS = frozenset({"Connection", "Keep-Alive", "Content-Length", "Transfer-Encoding", "Origin"})


class ChatPollHandler(NativeApiHandler):
    endpoint_specs = {"GET": native_endpoints.CHAT_POLL}

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        self._waiter: asyncio.Future[str | None] | None = None
        self._client_gone = False

    async def get(self) -> None:
        caller = await self.authenticate_user()
        args = self.parse(list(native_endpoints.POLL_PARAMS))
        shed_request(self.request)  # a parked poll keeps no copy of what it no longer needs
        batch = await self.wait_for_messages(caller.user_id, args.get("cursor"), args["limit"])
        if batch is not None:
            self.send_success(batch)

    async def wait_for_messages(self, user_id: int, cursor: int | None, limit: int) -> dict[str, Any] | None:
        """The batch to answer, or None when the client went away."""
        if cursor is None:
            return await self.context.run_blocking(chat.messages_after, user_id, None, limit)
        registry = self.context.waiters
        loop = asyncio.get_running_loop()
        timeout = float(self.context.flask_app.config["LONGPOLL_TIMEOUT_SECS"])
        # Spread the timeouts so polls parked together do not come back together.
        deadline = loop.time() + timeout * (1.0 - TIMEOUT_JITTER_FRACTION * random.random())
        woken = False  # by a wake-up for this user: its key was raised before the publish
        while not self._client_gone:
            waiter = self._waiter = registry.add(user_id, deadline - loop.time())
            try:
                if registry.closing:
                    return _empty(cursor)
                if woken or not await self._cursor_is_latest(user_id, cursor):
                    batch = await self.context.run_blocking(chat.messages_after, user_id, cursor, limit)
                    if batch["list"] or registry.closing:
                        return batch
                reason = await waiter
                if reason == GONE:
                    return None
                if reason not in (None, RECHECK) or registry.closing:  # timed out, evicted, closing
                    return _empty(cursor)
                woken = reason is None
            finally:
                registry.discard(user_id, waiter)
                self._waiter = None
        return None

    async def _cursor_is_latest(self, user_id: int, cursor: int) -> bool:
        """True when Redis says nothing newer than ``cursor`` was sent (no key: unknown)."""
        try:
            (latest,) = await self.context.redis_batch.run([("GET", latest_message_key(user_id))])
        except redis.RedisError:
            return False
        return latest is not None and int(latest) <= cursor

    def on_connection_close(self) -> None:
        self._client_gone = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(GONE)


def shed_request(request: HTTPServerRequest) -> None:
    """Drop what a parked poll no longer needs of its request, once it is authenticated and
    parsed: the parsed arguments, the signed query string (in the request and in the
    connection's start line) and every header but those the answer still reads
    (:data:`KEPT_HEADERS`: keep-alive and CORS). The headers object is trimmed in
    place: the connection holds the same one for its keep-alive decision."""
    request.query_arguments = request.arguments = request.body_arguments = {}
    request.uri, request.query = request.path, ""
    for name in [name for name in request.headers if name not in KEPT_HEADERS]:
        del request.headers[name]
    connection = request.connection
    start_line = getattr(connection, "_request_start_line", None)
    if isinstance(start_line, RequestStartLine):
        connection._request_start_line = start_line._replace(path=request.path)  # type: ignore[union-attr]


def _empty(cursor: int) -> dict[str, Any]:
    return {"list": [], "cursor": cursor, "has_more": False}
