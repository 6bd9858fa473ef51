"""Voice clips are checked by parsing them, never by their first bytes alone.

Invariants: a clip is accepted only when
- its container is recognised (AMR, AAC/ADTS, MP3, M4A, Ogg, WAV) and
  ``mutagen`` (AMR: the frame walk below, mutagen has no AMR reader) parses it
  as audio with a positive duration;
- for the containers whose structure is cheap to walk (WAV chunks, Ogg pages,
  MP4 boxes, AMR and ADTS frames) the structure covers the file exactly: no
  bytes before, between or after (a WAV header followed by HTML is refused);
- no HTML/script marker appears anywhere (belt and braces beside
  ``X-Content-Type-Options: nosniff``; an MP3's frames are not walked here).
"""

from __future__ import annotations

import io
import re
import struct

from mutagen import MutagenError
from mutagen.aac import AAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.ogg import OggFileType
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"mp41", b"mp42", b"isom", b"3gp4", b"3gp5", b"3gp6", b"3g2a"}
_MARKUP_RE = re.compile(rb"<\s*(?:html|head|body|script|iframe|svg|object|embed|meta|!doctype|\?xml)", re.I)
# AMR storage format (RFC 4867 section 5): speech bytes after the 1-byte frame header, by frame type.
AMR_NB_FRAME_BYTES = (12, 13, 15, 17, 19, 20, 26, 31, 5, 6, 5, 5, None, None, None, 0)
AMR_WB_FRAME_BYTES = (17, 23, 32, 36, 40, 46, 50, 58, 60, 5, None, None, None, None, 0, 0)
OGG_READERS: tuple[type[OggFileType], ...] = (OggOpus, OggVorbis, OggSpeex)


class NotAudio(ValueError):
    """The bytes are not a clip we accept (the message says why)."""


def container_of(content: bytes) -> str | None:
    """The container the bytes claim to be, from their first bytes (a file extension)."""
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


def _walk_amr(content: bytes) -> None:
    wide = content.startswith(b"#!AMR-WB\n")
    sizes = AMR_WB_FRAME_BYTES if wide else AMR_NB_FRAME_BYTES
    pos, frames = (9 if wide else 6), 0
    while pos < len(content):
        header = content[pos]
        size = sizes[(header >> 3) & 0x0F]
        if header & 0x83 or size is None or pos + 1 + size > len(content):
            raise NotAudio("broken AMR frame")
        pos, frames = pos + 1 + size, frames + 1
    if frames == 0:
        raise NotAudio("AMR without frames")


def _walk_adts(content: bytes) -> None:
    pos = 0
    while pos < len(content):
        header = content[pos : pos + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
            raise NotAudio("broken ADTS frame")
        length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
        if length < 7:
            raise NotAudio("broken ADTS frame")
        pos += length
    if pos != len(content):
        raise NotAudio("truncated ADTS frame")


def _walk_wav(content: bytes) -> None:
    riff_size = struct.unpack_from("<I", content, 4)[0]
    if riff_size + 8 != len(content):
        raise NotAudio("WAV size does not match the file")
    pos, seen = 12, set()
    while pos < len(content):
        if pos + 8 > len(content):
            raise NotAudio("broken WAV chunk")
        chunk_id, size = content[pos : pos + 4], struct.unpack_from("<I", content, pos + 4)[0]
        pos += 8 + size + (size & 1)
        if pos > len(content) + (size & 1):
            raise NotAudio("WAV chunk runs past the end")
        seen.add(chunk_id)
    if not {b"fmt ", b"data"} <= seen:
        raise NotAudio("WAV without fmt or data")


def _walk_ogg(content: bytes) -> None:
    pos = 0
    while pos < len(content):
        if content[pos : pos + 4] != b"OggS" or pos + 27 > len(content):
            raise NotAudio("broken Ogg page")
        segments = content[pos + 26]
        table = content[pos + 27 : pos + 27 + segments]
        if len(table) != segments:
            raise NotAudio("broken Ogg page")
        pos += 27 + segments + sum(table)
    if pos != len(content):
        raise NotAudio("truncated Ogg page")


def _walk_mp4(content: bytes) -> None:
    pos = 0
    while pos < len(content):
        if pos + 8 > len(content):
            raise NotAudio("broken MP4 box")
        size = struct.unpack_from(">I", content, pos)[0]
        if size == 1 and pos + 16 <= len(content):
            size = struct.unpack_from(">Q", content, pos + 8)[0]
        elif size == 0:
            size = len(content) - pos
        if size < 8 or pos + size > len(content):
            raise NotAudio("broken MP4 box")
        pos += size


def _mutagen_length(container: str, content: bytes) -> float:
    readers_by_container: dict[str, tuple[type, ...]] = {
        "aac": (AAC,),
        "mp3": (MP3,),
        "m4a": (MP4,),
        "wav": (WAVE,),
        "ogg": OGG_READERS,
    }
    readers = readers_by_container[container]
    for reader in readers:
        try:
            return float(reader(io.BytesIO(content)).info.length or 0.0)
        except (MutagenError, ValueError, struct.error, IndexError, KeyError):
            continue
    raise NotAudio(f"not a readable {container} file")


STRUCTURE_WALKS = {"amr": _walk_amr, "aac": _walk_adts, "wav": _walk_wav, "ogg": _walk_ogg, "m4a": _walk_mp4}


def check_audio(content: bytes) -> str:
    """The file extension of an acceptable voice clip, or :class:`NotAudio`."""
    container = container_of(content)
    if container is None:
        raise NotAudio("only AMR, AAC, MP3, M4A, Ogg or WAV audio")
    if _MARKUP_RE.search(content):
        raise NotAudio("the file carries markup")
    walk = STRUCTURE_WALKS.get(container)
    if walk is not None:
        try:
            walk(content)
        except (struct.error, IndexError):
            raise NotAudio(f"broken {container} file") from None
    if container != "amr" and _mutagen_length(container, content) <= 0:
        raise NotAudio("audio without a duration")
    return container
