"""``GET /api/chat/poll``: the long-poll for new chat messages, on the event loop.

The cursor is the highest message id the client has. A poll answers at once
when messages to the caller newer than the cursor exist; otherwise it parks a
future in the process's :class:`~async_handlers.waiters.WaiterRegistry` and
waits until a wake-up, ``LONGPOLL_TIMEOUT_SECS`` (then: an empty list and the
same cursor), the client going away (the future is cancelled and removed), or
shutdown (answered at once, so the client re-polls another process).

The waiter is registered *before* the database is read, so a message
committed between the read and the wait still wakes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from async_handlers.base import NativeApiHandler
from wsgi_app.api.endpoint import EndpointSpec
from wsgi_app.errors import PARAM_INVALID
from wsgi_app.params import Param
from wsgi_app.services import chat

POLL_PARAMS = (
    Param(
        "cursor",
        "integer",
        minimum=0,
        description="the highest msg_id you have; omit it once to get the current cursor at once",
    ),
    Param("limit", "integer", default=50, minimum=1, maximum=chat.MAX_POLL_BATCH),
)
POLL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["list", "cursor", "has_more"],
    "properties": {
        "list": {"type": "array", "items": chat.MESSAGE_SCHEMA, "description": "oldest first"},
        "cursor": {"type": "integer", "description": "send it with the next poll"},
        "has_more": {"type": "boolean", "description": "more are waiting: poll again at once"},
    },
}


class ChatPollHandler(NativeApiHandler):
    endpoint_specs = {
        "GET": EndpointSpec(
            summary="Wait for new messages (long-poll)",
            params=POLL_PARAMS,
            errors=(PARAM_INVALID,),
            data_schema=POLL_SCHEMA,
            description="Returns at once with messages to you newer than cursor (oldest first, "
            "at most limit); otherwise waits up to about 50 s and returns an empty list with the "
            "same cursor. Loss-free and exactly once across reconnects, restarts and processes "
            "as long as the client sends back the cursor it got.",
            tags=("chat",),
        )
    }

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        self._waiter: asyncio.Future[None] | None = None
        self._client_gone = False

    async def get(self) -> None:
        caller = await self.authenticate()
        args = self.parse(list(POLL_PARAMS))
        assert caller.user_id is not None
        batch = await self.wait_for_messages(caller.user_id, args.get("cursor"), args["limit"])
        if batch is not None:
            self.send_success(batch)

    async def wait_for_messages(self, user_id: int, cursor: int | None, limit: int) -> dict[str, Any] | None:
        """The batch to answer, or None when the client went away."""
        registry = self.context.waiters
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(self.context.flask_app.config["LONGPOLL_TIMEOUT_SECS"])
        empty = {"list": [], "cursor": cursor, "has_more": False}
        while not self._client_gone:
            waiter = self._waiter = registry.add(user_id)
            try:
                if registry.closing and cursor is not None:
                    return empty
                batch = await self.context.run_blocking(chat.messages_after, user_id, cursor, limit)
                remaining = deadline - loop.time()
                if batch["list"] or cursor is None or registry.closing or remaining <= 0:
                    return batch
                await asyncio.wait([waiter], timeout=remaining)
            finally:
                registry.discard(user_id, waiter)
                self._waiter = None
        return None

    def on_connection_close(self) -> None:
        self._client_gone = True
        if self._waiter is not None:
            self._waiter.cancel()
