"""The send's rate limit counts stored messages only, on the Flask path and the native one.

A replay of an earlier ``clientMsgId``, an unknown peer and a blocked peer are
refused (or answered) before the rate limit is consulted, so they never use up
the sender's allowance, and at the limit they still get their own answer.
"""

from __future__ import annotations

import pytest
from flask import Flask

from tests.chat_support import block
from tests.helpers import ApiClient
from wsgi_app import errors

SEND = "/api/chat/send"


@pytest.mark.parametrize("side", ["flask", "native"])
def test_refused_sends_do_not_count_and_are_answered_at_the_limit(
    app: Flask, api: ApiClient, live_api: ApiClient, auth, side: str
) -> None:
    client = api if side == "flask" else live_api
    app.config["CHAT_SEND_LIMITS"] = [(2, 60)]
    alice, bob, carol = auth.login(), auth.login(), auth.login()
    block(app, carol, alice)

    def send(peer_id: int, client_msg_id: str) -> tuple[int, int | None]:
        params = {"peerId": peer_id, "clientMsgId": client_msg_id, "kind": "text", "content": "x"}
        reply = client.post(SEND, params, user=alice)
        return reply.status, reply.code

    def refused_and_replayed() -> None:
        assert send(bob.user_id, "m0") == (200, 0)  # a replay: answered with the stored message
        assert send(10**9, "m8")[1] == errors.USER_NOT_FOUND.code
        assert send(carol.user_id, "m9")[1] == errors.BLOCKED.code

    assert send(bob.user_id, "m0") == (200, 0)
    for _ in range(3):
        refused_and_replayed()
    assert send(bob.user_id, "m1") == (200, 0)  # the second stored message: still allowed
    assert send(bob.user_id, "m2") == (429, errors.RATE_LIMITED.code)
    refused_and_replayed()  # at the limit: their own answers, not 429
