"""Helpers shared by the chat and nearby tests (sending, blocking, hiding, test images/audio)."""

from __future__ import annotations

import io
import itertools
import wave
from typing import Any

from flask import Flask
from PIL import Image

from tests.helpers import ApiClient, Reply, SignedInUser
from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.social import Block
from wsgi_app.models.user import AUTHORITY_HIDDEN, User
from wsgi_app.services.location import nearby_viewer
from wsgi_app.services.profile import cache as profile_cache

_client_ids = itertools.count(1)

# An AMR-NB header and one 12.2 kbit/s frame (header byte + 31 bytes): a whole, parseable clip.
AMR_CLIP = b"#!AMR\n" + b"\x3c" + b"\x00" * 31


def wav_bytes(frames: int = 800) -> bytes:
    """A real WAV clip (8 kHz mono, silence), 0.1 s by default."""
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes(b"\x00\x00" * frames)
    return out.getvalue()


WAV_CLIP = wav_bytes()


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

        def change() -> None:
            db.session.add(Block(blocker_id=blocker.user_id, blocked_id=blocked.user_id))
            nearby_viewer.forget_after_commit([blocker.user_id, blocked.user_id])  # as the service says

        transactions.write(change)


def hide_profile(app: Flask, user: SignedInUser) -> None:
    with app.app_context():

        def change() -> None:
            db.session.get_one(User, user.user_id).authority = AUTHORITY_HIDDEN
            profile_cache.invalidate_after_commit([user.user_id])  # a change outside the services says so

        transactions.write(change)
