"""Chat media: voice parsed as audio, a daily quota in bytes, files readable only by the two
people of the conversation (and not after a block), served by nginx after the app's check."""

from __future__ import annotations

import io
import os
import struct

import pytest
from flask import Flask

from tests.chat_support import AMR_CLIP, WAV_CLIP, block, png_bytes, wav_bytes
from tests.helpers import ApiClient
from wsgi_app.services.chat.audio_check import NotAudio, check_audio

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 413  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz


def _adts(frames: int = 5) -> bytes:
    length = 7 + 10
    header = bytes(
        [0xFF, 0xF1, 0x50, 0x80 | (length >> 11), (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F, 0xFC]
    )
    return (header + b"\x00" * 10) * frames


@pytest.mark.parametrize(
    "content, extension",
    [(WAV_CLIP, "wav"), (AMR_CLIP, "amr"), (MP3_FRAME * 20, "mp3"), (_adts(), "aac")],
)
def test_real_clips_are_accepted(content: bytes, extension: str) -> None:
    assert check_audio(content) == extension


@pytest.mark.parametrize(
    "content",
    [
        WAV_CLIP + HTML,  # a whole WAV, then a page
        WAV_CLIP[:44] + HTML * 30,  # a WAV header, then a page where the samples should be
        WAV_CLIP[:4] + struct.pack("<I", 36 + len(HTML)) + WAV_CLIP[8:36] + b"LIST" + HTML,  # no data
        AMR_CLIP + HTML,
        b"#!AMR\n" + b"\x3c" + HTML[:31],  # markup inside a well-formed frame
        MP3_FRAME[:4] + HTML * 20,
        _adts() + HTML,
        b"OggS" + b"\x00" * 60,
        b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 12 + HTML,
        b"RIFF\x00\x00\x00\x00WAVE",
    ],
)
def test_clips_that_are_not_wholly_audio_are_refused(content: bytes) -> None:
    with pytest.raises(NotAudio):
        check_audio(content)


def _send_file(api: ApiClient, sender, peer, kind: str, content: bytes, cid: str):
    params = {"peerId": peer.user_id, "clientMsgId": cid, "kind": kind}
    return api.post("/api/chat/send", params, user=sender, files={"file": (io.BytesIO(content), "f.wav")})


def _stored(app: Flask) -> set[str]:
    folder = app.config["CHAT_MEDIA_FOLDER"]
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def test_a_wav_header_followed_by_html_is_refused_and_nothing_stored(
    app: Flask, api: ApiClient, alice, bob
) -> None:
    before = _stored(app)
    reply = _send_file(api, alice, bob, "voice", WAV_CLIP + HTML, "w1")
    assert (reply.status, reply.code) == (415, 415)
    assert _stored(app) == before


def test_media_count_against_a_daily_quota_in_bytes(app: Flask, api: ApiClient, alice, bob) -> None:
    clip = wav_bytes(4000)
    app.config["CHAT_MEDIA_DAILY_QUOTA_BYTES"] = 2 * len(clip) + 100
    before = _stored(app)
    assert _send_file(api, alice, bob, "voice", clip, "q1").status == 200
    assert _send_file(api, alice, bob, "voice", clip, "q2").status == 200
    refused = _send_file(api, alice, bob, "voice", clip, "q3")
    assert (refused.status, refused.code) == (429, 429) and int(refused.headers["Retry-After"]) > 0
    assert len(_stored(app) - before) == 2
    assert _send_file(api, bob, alice, "voice", clip, "q1").status == 200  # per sender
    small = _send_file(api, alice, bob, "image", png_bytes(), "q4")  # what is left still fits
    assert small.status == 200, small.body


# -- who may read a file ---------------------------------------------------------------


def _read(api: ApiClient, viewer, media_url: str):
    path, _, name = media_url.partition("?name=")
    signed = api.signed("GET", path, {**viewer.params(), "name": name})
    return api.flask_client.get(path, query_string=signed)


@pytest.fixture
def image_url(api: ApiClient, alice, bob) -> str:
    reply = _send_file(api, alice, bob, "image", png_bytes(), "img")
    assert reply.status == 200, reply.body
    return reply.data["message"]["media_url"]


def test_only_the_two_people_read_a_chat_file(
    app: Flask, api: ApiClient, alice, bob, carol, image_url
) -> None:
    for viewer in (alice, bob):
        served = _read(api, viewer, image_url)
        assert served.status_code == 200 and served.data == png_bytes()
        assert served.headers["Content-Type"] == "image/png"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in served.headers["Cache-Control"] and "private" in served.headers["Cache-Control"]
    stranger = _read(api, carol, image_url)
    assert (stranger.status_code, stranger.get_json()["code"]) == (404, 511)
    name = image_url.partition("?name=")[2]
    assert api.flask_client.get("/uploads/" + name).status_code == 404
    assert api.flask_client.get(image_url).get_json()["code"] == 300


def test_a_block_closes_the_files_of_the_conversation(
    app: Flask, api: ApiClient, alice, bob, image_url
) -> None:
    block(app, bob, alice)
    for viewer in (alice, bob):
        refused = _read(api, viewer, image_url)
        assert (refused.status_code, refused.get_json()["code"]) == (403, 512)


@pytest.mark.parametrize("name", ["../datingtoday.sqlite3", "chat-x.png", "a" * 64])
def test_made_up_names_are_not_found(api: ApiClient, alice, name: str) -> None:
    refused = _read(api, alice, "/api/chat/media?name=" + name)
    assert refused.get_json()["code"] in (300, 511)


def test_behind_nginx_the_app_answers_x_accel_redirect(app: Flask, api: ApiClient, alice, image_url) -> None:
    app.config["CHAT_MEDIA_ACCEL_PATH"] = "/_chat_media/"
    served = _read(api, alice, image_url)
    name = image_url.partition("?name=")[2]
    assert served.status_code == 200 and served.data == b""
    assert served.headers["X-Accel-Redirect"] == "/_chat_media/" + name
    assert served.headers["Content-Type"] == "image/png"


def test_a_file_stored_before_the_rule_moves_out_of_the_public_folder(
    app: Flask, api: ApiClient, alice, image_url
) -> None:
    name = image_url.partition("?name=")[2]
    os.replace(
        os.path.join(app.config["CHAT_MEDIA_FOLDER"], name), os.path.join(app.config["UPLOAD_FOLDER"], name)
    )
    assert _read(api, alice, image_url).status_code == 200
    assert not os.path.exists(os.path.join(app.config["UPLOAD_FOLDER"], name))
    assert os.path.exists(os.path.join(app.config["CHAT_MEDIA_FOLDER"], name))
