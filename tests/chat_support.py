"""Helpers shared by the chat and nearby tests (sending, blocking, hiding, test images/audio)."""

from __future__ import annotations

import io
import itertools
from typing import Any

from flask import Flask
from PIL import Image

from tests.helpers import ApiClient, Reply, SignedInUser
from wsgi_app.extensions import db
from wsgi_app.models.social import Block
from wsgi_app.models.user import AUTHORITY_HIDDEN, User

_client_ids = itertools.count(1)

# A minimal AMR-NB header followed by silent frames: enough for a magic-bytes check.
AMR_CLIP = b"#!AMR\n" + b"\x3c" + b"\x00" * 31
OGG_CLIP = b"OggS\x00\x02" + b"\x00" * 40


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def send_text(
    api: ApiClient,
    sender: SignedInUser,
    peer: SignedInUser | int,
    text: str,
    client_msg_id: str | None = None,
) -> Reply:
    peer_id = peer if isinstance(peer, int) else peer.user_id
    params: dict[str, Any] = {
        "peerId": peer_id,
        "clientMsgId": client_msg_id or f"c{next(_client_ids)}",
        "kind": "text",
        "content": text,
    }
    return api.post("/api/chat/send", params, user=sender)


def sent_id(reply: Reply) -> int:
    assert reply.status == 200, reply.body
    return reply.data["message"]["msg_id"]


def block(app: Flask, blocker: SignedInUser, blocked: SignedInUser) -> None:
    with app.app_context():
        db.session.add(Block(blocker_id=blocker.user_id, blocked_id=blocked.user_id))
        db.session.commit()


def hide_profile(app: Flask, user: SignedInUser) -> None:
    with app.app_context():
        row = db.session.get(User, user.user_id)
        assert row is not None
        row.authority = AUTHORITY_HIDDEN
        db.session.commit()
