"""Voice and image attachments of chat messages: checked from their bytes, stored under random names.

Images are checked with Pillow through :func:`wsgi_app.services.photos.check_image`
(the same check as profile photos); voice clips by their magic bytes (AMR,
AAC/ADTS, MP3, M4A/MP4 audio, Ogg, WAV). Files go to ``UPLOAD_FOLDER`` under
unguessable names and are served at ``UPLOAD_URL_PATH`` like photos.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import IO

from flask import current_app

from wsgi_app.errors import UNSUPPORTED_MEDIA, ApiError
from wsgi_app.services import photos
from wsgi_app.services.upload_files import read_bounded, upload_path, upload_url

KIND_TEXT = "text"
KIND_VOICE = "voice"
KIND_IMAGE = "image"
MEDIA_KINDS = (KIND_VOICE, KIND_IMAGE)
MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"mp41", b"mp42", b"isom", b"3gp4", b"3gp5", b"3gp6", b"3g2a"}


@dataclass(frozen=True)
class StoredMedia:
    filename: str
    path: str


def audio_format(content: bytes) -> str | None:
    """The audio container the bytes start with (a file extension), or None."""
    head = content[:16]
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return "amr"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp" and head[8:12] in MP4_AUDIO_BRANDS:
        return "m4a"
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS: sync word, layer 00
            return "aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0:  # MPEG audio frame, layer I-III
            return "mp3"
    return None


def check_media(kind: str, content: bytes) -> str:
    """The file extension for ``content`` of ``kind``, or an error (514 / 415)."""
    if kind == KIND_IMAGE:
        checked = photos.check_image(content)
        return photos.IMAGE_FORMATS[checked.format][0]
    extension = audio_format(content)
    if extension is None:
        raise ApiError(UNSUPPORTED_MEDIA, "voice: only AMR, AAC, MP3, M4A, Ogg or WAV audio")
    return extension


def store_media(kind: str, stream: IO[bytes]) -> StoredMedia:
    """Check and write the file; the caller removes it again if its commit fails."""
    content = read_bounded(stream, current_app.config["CHAT_MEDIA_MAX_BYTES"], "file")
    extension = check_media(kind, content)
    filename = f"chat-{secrets.token_urlsafe(18)}.{extension}"
    path = upload_path(filename)
    with open(path, "xb") as out:
        out.write(content)
    return StoredMedia(filename, path)


def media_url(filename: str | None) -> str | None:
    return upload_url(filename) if filename else None
