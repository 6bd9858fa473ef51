"""Input limits: photo pixels checked before decoding, form bodies that cannot be parsed, block
toggling."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from PIL import Image, PngImagePlugin

from tests.conftest import AuthActions
from tests.helpers import ApiClient
from tests.social_helpers import upload_file
from wsgi_app.services.profile import photos as photo_service


def _png(size: tuple[int, int], mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG", optimize=False)
    return out.getvalue()


def test_a_huge_png_is_refused_from_its_header_before_decoding(monkeypatch, api: ApiClient, user) -> None:
    content = _png((7000, 7000))
    assert len(content) < 200_000  # a small file that would decode to 49 million pixels
    decoded = []
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "verify", lambda self: decoded.append(1))
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: decoded.append(1))
    reply = api.post("/api/photo/upload", user=user, files={"photo": upload_file(content)})
    assert (reply.status, reply.code) == (415, 514)
    assert "dimensions" in reply.body["msg"] and decoded == []


def test_a_phone_sized_photo_is_accepted(api: ApiClient, user) -> None:
    assert photo_service.MAX_PIXELS >= 4000 * 3000  # a 12 MP phone photo
    reply = api.post("/api/photo/upload", user=user, files={"photo": upload_file(_png((4000, 3000), "L"))})
    assert reply.status == 200, reply.body


# -- form bodies -----------------------------------------------------------------------


def _raw_post(api: ApiClient, body: bytes, content_type: str, **params: str):
    signed = api.signed("POST", "/api/auth/sendsms", {"phone": "13800138000", **params})
    return api.transport.send("POST", "/api/auth/sendsms", signed, None, {}, body, content_type)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1', "multipart/form-data; boundary=B"),
        (b"garbage", "multipart/form-data"),
    ],
)
def test_a_broken_multipart_body_is_a_300(api: ApiClient, sms_inbox, body: bytes, content_type: str) -> None:
    reply = _raw_post(api, body, content_type)
    assert (reply.status, reply.code) == (400, 300)
    assert reply.body["msg"] == "malformed form body"
    assert sms_inbox("13800138000") is None


def test_too_many_form_fields_is_a_300(app: Flask, api: ApiClient, sms_inbox) -> None:
    parts = "".join(f'--B\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n1\r\n' for i in range(1500))
    reply = _raw_post(api, (parts + "--B--\r\n").encode(), "multipart/form-data; boundary=B")
    assert (reply.status, reply.code) == (400, 300)
    assert "fields" in reply.body["msg"] and sms_inbox("13800138000") is None


def test_a_body_over_the_limit_is_a_413_envelope_in_flask(app: Flask, api: ApiClient) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1000
    reply = _raw_post(api, b"x=" + b"a" * 2000, "application/x-www-form-urlencoded")
    assert (reply.status, reply.code) == (413, 413)


# -- block toggling --------------------------------------------------------------------


def test_block_and_unblock_share_a_rate_limit(app: Flask, api: ApiClient, auth: AuthActions) -> None:
    app.config["BLOCK_CHANGE_LIMITS"] = [(3, 3600)]
    me, peer = auth.login(), auth.login()
    paths = ["/api/block/add", "/api/block/remove", "/api/block/add", "/api/block/remove"]
    replies = [api.post(path, {"peerId": peer.user_id}, user=me) for path in paths]
    assert [r.status for r in replies] == [200, 200, 200, 429]
    assert replies[-1].code == 429 and "Retry-After" in replies[-1].headers
    listed = api.get("/api/block/list", user=me)
    assert listed.data["total"] == 1  # the refused unblock changed nothing
