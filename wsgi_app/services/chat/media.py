"""Voice and image attachments of chat messages: checked by parsing, counted against a daily
quota, stored under random names, readable only by the two people of the conversation.

Invariants:
- Images are checked with Pillow (:func:`wsgi_app.services.profile.photos.check_image`, as profile
  photos); voice clips are parsed (:mod:`wsgi_app.services.chat.audio_check`).
- Every accepted upload counts against the sender's ``CHAT_MEDIA_DAILY_QUOTA_BYTES``
  (per UTC day, in Redis) before it is written; over it the send is 429.
- Files live in ``CHAT_MEDIA_FOLDER``, never under the public uploads path. They
  are read through ``GET /api/chat/media?name=<name>`` (signed, with the token):
  the app checks that the caller sent or received the message and that no block
  stands between the two, then
  answers ``X-Accel-Redirect`` to nginx's internal ``CHAT_MEDIA_ACCEL_PATH`` (nginx
  sends the bytes) or, without nginx, the file itself.
- Media stored under ``UPLOAD_FOLDER`` before this rule moves on first access.
"""

from __future__ import annotations

import mimetypes
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from flask import current_app

from wsgi_app.errors import BLOCKED, OBJECT_NOT_FOUND, RATE_LIMITED, UNSUPPORTED_MEDIA, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.chat import Message
from wsgi_app.services.chat.audio_check import NotAudio, check_audio
from wsgi_app.services.profile import photos
from wsgi_app.services.social.blocks import is_blocked_between
from wsgi_app.services.upload_files import read_bounded

KIND_TEXT = "text"
KIND_VOICE = "voice"
KIND_IMAGE = "image"
MEDIA_URL_PATH = "/api/chat/media?name="
FILENAME_PATTERN = r"chat-[A-Za-z0-9_-]{24}\.[a-z0-9]{2,4}"
MEDIA_CONTENT_TYPES = {
    "amr": "audio/amr",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
}
QUOTA_KEY_TTL_SECS = 2 * 86400


@dataclass(frozen=True)
class StoredMedia:
    filename: str
    path: str


def check_media(kind: str, content: bytes) -> str:
    """The file extension for ``content`` of ``kind``, or an error (514 / 415)."""
    if kind == KIND_IMAGE:
        checked = photos.check_image(content)
        return photos.IMAGE_FORMATS[checked.format][0]
    try:
        return check_audio(content)
    except NotAudio as err:
        raise ApiError(UNSUPPORTED_MEDIA, f"voice: {err}") from None


def charge_quota(user_id: int, size_bytes: int) -> None:
    """Count ``size_bytes`` against today's quota of ``user_id``, or 429 (nothing counted)."""
    quota = current_app.config["CHAT_MEDIA_DAILY_QUOTA_BYTES"]
    now = datetime.now(UTC)
    key = f"chat:media:bytes:{user_id}:{now:%Y%m%d}"
    client = redis_client()
    pipe = client.pipeline(transaction=True)
    pipe.incrby(key, size_bytes)
    pipe.expire(key, QUOTA_KEY_TTL_SECS)
    used = int(pipe.execute()[0])
    if used > quota:
        client.decrby(key, size_bytes)
        tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        wait_secs = max(1, int((tomorrow - now).total_seconds()))
        raise ApiError(
            RATE_LIMITED,
            f"chat media quota of {quota} bytes a day used up",
            headers={"Retry-After": str(wait_secs)},
        )


def media_folder() -> str:
    folder: str = current_app.config["CHAT_MEDIA_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    return folder


def store_media(kind: str, stream: IO[bytes], sender_id: int) -> StoredMedia:
    """Check, charge and write the file; the caller removes it again if its commit fails."""
    content = read_bounded(stream, current_app.config["CHAT_MEDIA_MAX_BYTES"], "file")
    extension = check_media(kind, content)
    charge_quota(sender_id, len(content))
    filename = f"chat-{secrets.token_urlsafe(18)}.{extension}"
    path = os.path.join(media_folder(), filename)
    with open(path, "xb") as out:
        out.write(content)
    return StoredMedia(filename, path)


def media_url(filename: str | None) -> str | None:
    return MEDIA_URL_PATH + filename if filename else None


def media_path(filename: str) -> str:
    return os.path.join(current_app.config["CHAT_MEDIA_FOLDER"], filename)


def readable_media(viewer_id: int, filename: str) -> tuple[str, str]:
    """``(path, content type)`` of a chat file ``viewer_id`` may read, else 511 (or 512 when blocked)."""
    if not re.fullmatch(FILENAME_PATTERN, filename):
        raise ApiError(OBJECT_NOT_FOUND, "no such file")
    row = db.session.execute(
        db.select(Message.sender_id, Message.recipient_id).where(Message.media_filename == filename)
    ).first()
    if row is None or viewer_id not in (row.sender_id, row.recipient_id):
        raise ApiError(OBJECT_NOT_FOUND, "no such file")
    peer_id = row.recipient_id if viewer_id == row.sender_id else row.sender_id
    if is_blocked_between(viewer_id, peer_id):
        raise ApiError(BLOCKED, "conversation not available")
    path = media_path(filename)
    legacy = os.path.join(current_app.config["UPLOAD_FOLDER"], filename)
    if not os.path.exists(path) and os.path.exists(legacy):
        os.replace(legacy, os.path.join(media_folder(), filename))  # out of the public folder
    if not os.path.exists(path):
        raise ApiError(OBJECT_NOT_FOUND, "no such file")
    extension = filename.rsplit(".", 1)[-1]
    content_type = MEDIA_CONTENT_TYPES.get(extension) or mimetypes.guess_type(filename)[0]
    return path, content_type or "application/octet-stream"
