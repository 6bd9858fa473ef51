"""``POST /api/chat/send`` without an upload: the chat send, natively.

Same declaration (:data:`wsgi_app.native_endpoints.CHAT_SEND`), request check,
parameters, service call (:func:`wsgi_app.services.chat.messages.send_message`),
envelope and error codes as the Flask view in ``wsgi_app/api/chat.py``, which
still serves every ``multipart/form-data`` send (a voice or image upload):
``tornado_server.py`` routes those to Flask by their ``Content-Type``.

What it saves is Flask's per-request work and the blocking request check: the
signature, nonce and token are checked on the event loop (one shared
``redis.asyncio`` pipeline, :mod:`async_handlers.auth`), and the send itself
(check, rate limit, the one transaction, the announcement) is ONE job on the
write pool (:meth:`~async_handlers.base.NativeContext.run_write`), never the
pool that answers woken long-polls. Invariant: idempotency by ``clientMsgId``,
the ordering behind the poll cursor and the deadlock retry are the service's,
unchanged; nothing here touches the database or sync Redis on the loop.
"""

from __future__ import annotations

from async_handlers.base import NativeApiHandler
from wsgi_app import native_endpoints
from wsgi_app.services.chat import messages as chat


class ChatSendHandler(NativeApiHandler):
    endpoint_specs = {"POST": native_endpoints.CHAT_SEND}
    _params: dict[str, str] | None = None

    def raw_params(self) -> dict[str, str]:
        """Decoded once: the request check and the parameters both read them."""
        if self._params is None:
            self._params = super().raw_params()
        return self._params

    async def post(self) -> None:
        caller = await self.authenticate_user()
        args = self.parse(list(native_endpoints.SEND_PARAMS))
        sent = await self.context.run_write(
            chat.send_message,
            caller.user_id,
            args["peer_id"],
            args["client_msg_id"],
            args["kind"],
            args.get("content"),
            None,
        )
        self.send_success({"message": sent.message, "duplicate": sent.duplicate})
