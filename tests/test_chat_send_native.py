"""The native ``POST /api/chat/send`` answers exactly as the Flask view does.

Every case runs twice on the same database: through Flask (the test client)
and through a live ``tornado_server.py`` (where a send without an upload is
served by :mod:`async_handlers.chat_send`, an upload by Flask). Status, code,
message and data must match, apart from the new message's id and time.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from async_handlers.chat_send import ChatSendHandler
from tests.chat_support import AMR_CLIP, block, png_bytes
from tests.helpers import ApiClient, HttpTransport, Reply, SignedInUser

SEND = "/api/chat/send"


@pytest.fixture
def native_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The client message ids the native handler served."""
    served: list[str] = []
    post = ChatSendHandler.post

    async def counting(self: ChatSendHandler) -> None:
        served.append(self.get_body_argument("clientMsgId", None) or self.get_argument("clientMsgId", ""))
        await post(self)

    monkeypatch.setattr(ChatSendHandler, "post", counting)
    return served


def _comparable(reply: Reply) -> tuple[int, Any, Any, Any]:
    data = reply.body.get("data")
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        message = {k: v for k, v in data["message"].items() if k not in ("msg_id", "created_at", "media_url")}
        message["client_msg_id"] = message["client_msg_id"].split("-", 1)[1]  # drop the side prefix
        data = {**data, "message": message}
    return reply.status, reply.body.get("code"), reply.body.get("msg"), data


Case = Callable[[ApiClient, str], Reply]


def _upload(api: ApiClient, content: bytes, name: str, tmp_path: Path) -> dict[str, Any]:
    """The ``files`` argument of a one-file upload, as each transport takes it."""
    if isinstance(api.transport, HttpTransport):
        path = tmp_path / name
        path.write_bytes(content)
        return {"file": path}
    return {"file": (io.BytesIO(content), name)}


def _cases(alice: SignedInUser, bob: SignedInUser, carol: SignedInUser, tmp_path: Path) -> dict[str, Case]:
    def text(peer: int, cid: str, **extra: Any) -> Case:
        def run(api: ApiClient, side: str) -> Reply:
            params = {"peerId": peer, "clientMsgId": f"{side}-{cid}", "kind": "text", "content": "hi"}
            params.update(extra)
            return api.post(SEND, params, user=alice)

        return run

    def replay(api: ApiClient, side: str) -> Reply:
        params = {"peerId": bob.user_id, "clientMsgId": f"{side}-again", "content": "once"}
        first = api.post(SEND, params, user=alice)
        assert first.status == 200 and first.data["duplicate"] is False, first.body
        return api.post(SEND, params, user=alice)

    def conflict(api: ApiClient, side: str) -> Reply:
        params = {"clientMsgId": f"{side}-c", "content": "x"}
        api.post(SEND, {**params, "peerId": bob.user_id}, user=alice)
        return api.post(SEND, {**params, "peerId": carol.user_id}, user=alice)

    def forged(api: ApiClient, side: str) -> Reply:
        params = {"peerId": bob.user_id, "clientMsgId": f"{side}-f", "content": "x"}
        return api.post(SEND, params, user=SignedInUser(alice.user_id, bob.token, alice.phone))

    def text_with_file(api: ApiClient, side: str) -> Reply:  # multipart: Flask on both sides
        params = {"peerId": bob.user_id, "clientMsgId": f"{side}-tf", "kind": "text", "content": "hi"}
        return api.post(SEND, params, user=alice, files=_upload(api, AMR_CLIP, "a.amr", tmp_path))

    def image(api: ApiClient, side: str) -> Reply:
        params = {"peerId": bob.user_id, "clientMsgId": f"{side}-img", "kind": "image"}
        return api.post(SEND, params, user=alice, files=_upload(api, png_bytes(), "x.png", tmp_path))

    return {
        "text": text(bob.user_id, "t1"),
        "unicode text": text(bob.user_id, "t2", content="hello bob 👋"),
        "replay": replay,
        "conflict": conflict,
        "yourself": text(alice.user_id, "self"),
        "unknown user": text(10**9, "nobody"),
        "blocked": text(carol.user_id, "blocked"),
        "no content": text(bob.user_id, "empty", content=""),
        "too long": text(bob.user_id, "long", content="x" * 2001),
        "bad id": text(bob.user_id, "has space"),
        "bad peer": text(bob.user_id, "p", peerId="abc"),
        "bad kind": text(bob.user_id, "k", kind="video"),
        "voice without file": text(bob.user_id, "v", kind="voice"),
        "forged token": forged,
        "text with a file": text_with_file,
        "image": image,
    }


@pytest.mark.parametrize(
    "name",
    [
        "text",
        "unicode text",
        "replay",
        "conflict",
        "yourself",
        "unknown user",
        "blocked",
        "no content",
        "too long",
        "bad id",
        "bad peer",
        "bad kind",
        "voice without file",
        "forged token",
        "text with a file",
        "image",
    ],
)
def test_native_send_answers_like_flask(
    name: str,
    app: Flask,
    api: ApiClient,
    live_api: ApiClient,
    native_sends: list[str],
    tmp_path: Path,
    alice,
    bob,
    carol,
) -> None:
    block(app, carol, alice)
    case = _cases(alice, bob, carol, tmp_path)[name]
    flask_reply = case(api, "flask")
    assert not native_sends
    native_reply = case(live_api, "native")
    assert _comparable(native_reply) == _comparable(flask_reply), (native_reply.body, flask_reply.body)
    uploads = name in ("text with a file", "image")
    assert bool(native_sends) is not uploads, native_sends  # uploads stay on Flask


def test_native_send_is_rate_limited_like_flask(app: Flask, live_api: ApiClient, alice, bob) -> None:
    app.config["CHAT_SEND_LIMITS"] = [(2, 60)]
    params = {"peerId": bob.user_id, "content": "x"}
    ok = [live_api.post(SEND, {**params, "clientMsgId": f"r{i}"}, user=alice).status for i in range(2)]
    refused = live_api.post(SEND, {**params, "clientMsgId": "r9"}, user=alice)
    assert ok == [200, 200]
    assert (refused.status, refused.code) == (429, 429)
    assert int(refused.headers["Retry-After"]) > 0
