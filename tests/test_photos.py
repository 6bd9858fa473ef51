"""Photos: upload checks, limits, listing with visibility, delete, reorder, avatar, serving."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.social_helpers import block, image_bytes, set_user_fields, upload_file
from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.social import Photo
from wsgi_app.models.user import AUTHORITY_HIDDEN
from wsgi_app.services.profile import photos as photo_service


def upload(api, user, content: bytes, name: str = "face.png"):
    return api.post("/api/photo/upload", user=user, files={"photo": upload_file(content, name)})


def stored_files(app) -> set[str]:
    return set(os.listdir(app.config["UPLOAD_FOLDER"]))


def photo_rows(app, user_id: int) -> list[Photo]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Photo).where(Photo.user_id == user_id)).scalars())
        db.session.expunge_all()
        return rows


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_upload_each_supported_format(app, api, user, fmt):
    content = image_bytes(fmt, (12, 7))
    reply = upload(api, user, content, "whatever.bin")  # the name does not matter, the content does
    assert reply.status == 200, reply.body
    data = reply.data
    assert (data["width"], data["height"], data["size_bytes"], data["position"]) == (12, 7, len(content), 0)
    assert data["content_type"] == photo_service.IMAGE_FORMATS[fmt][1]
    name = data["url"].rsplit("/", 1)[1]
    assert data["url"] == "/uploads/" + name
    assert name.endswith("." + photo_service.IMAGE_FORMATS[fmt][0]) and "whatever" not in name
    assert Path(app.config["UPLOAD_FOLDER"], name).read_bytes() == content


def test_names_are_random(api, user):
    urls = {upload(api, user, image_bytes()).data["url"] for _ in range(3)}
    assert len(urls) == 3


@pytest.mark.parametrize(
    "content",
    [
        b"GIF89a but not really an image",
        b"<?php echo 'hi'; ?>",
        b"%PDF-1.4 fake",
        image_bytes("PNG")[:40],  # truncated
        image_bytes("BMP"),  # a real image, but not an accepted format
    ],
)
def test_non_images_are_514_and_nothing_is_stored(app, api, user, content):
    before = stored_files(app)
    reply = upload(api, user, content, "face.png")
    assert reply.status == 415 and reply.code == 514, reply.body
    assert stored_files(app) == before
    assert photo_rows(app, user.user_id) == []


def test_missing_file_is_300(api, user):
    reply = api.post("/api/photo/upload", user=user)
    assert reply.status == 400 and reply.code == 300


def test_photo_over_the_photo_limit_is_413(app, api, user):
    app.config["PHOTO_MAX_BYTES"] = 1000
    reply = upload(api, user, image_bytes("PNG", (8, 8)) + b"\0" * 1200)
    assert reply.status == 413 and reply.code == 413
    assert photo_rows(app, user.user_id) == []


def test_body_over_max_content_length_is_413(app, api, user):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    reply = upload(api, user, b"\0" * 5000)
    assert reply.status == 413 and reply.code == 413


def test_at_most_max_photos(app, api, user):
    app.config["PHOTO_MAX_PER_USER"] = 3
    for _ in range(3):
        assert upload(api, user, image_bytes()).code == 0
    before = stored_files(app)
    reply = upload(api, user, image_bytes())
    assert reply.status == 409 and reply.code == 409
    assert stored_files(app) == before
    assert len(photo_rows(app, user.user_id)) == 3


def test_failed_commit_removes_the_written_file(app, api, user, monkeypatch):
    before = stored_files(app)

    def failing_commit() -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", failing_commit)
    reply = upload(api, user, image_bytes())
    monkeypatch.undo()
    assert reply.status == 500
    assert stored_files(app) == before
    assert photo_rows(app, user.user_id) == []


def test_list_own_and_peer_in_order(api, auth):
    me, peer = auth.login(), auth.login()
    ids = [upload(api, peer, image_bytes()).data["photo_id"] for _ in range(3)]
    own = api.get("/api/photo/list", user=peer)
    theirs = api.get("/api/photo/list", {"peerId": peer.user_id}, user=me)
    assert [p["photo_id"] for p in own.data["list"]] == ids
    assert theirs.data == own.data and theirs.data["total"] == 3
    assert api.get("/api/photo/list", user=me).data == {"user_id": me.user_id, "list": [], "total": 0}


def test_list_of_hidden_or_blocking_peer_is_501(app, api, auth):
    me, hidden, blocker = auth.login(), auth.login(), auth.login()
    upload(api, hidden, image_bytes())
    set_user_fields(app, hidden.user_id, authority=AUTHORITY_HIDDEN)
    block(app, blocker.user_id, me.user_id)
    for peer in (hidden, blocker):
        assert api.get("/api/photo/list", {"peerId": peer.user_id}, user=me).code == 501
    assert api.get("/api/photo/list", {"peerId": 999999}, user=me).code == 501


def test_delete_removes_row_and_file_after_commit(app, api, user):
    data = upload(api, user, image_bytes()).data
    name = data["url"].rsplit("/", 1)[1]
    reply = api.post("/api/photo/delete", {"photoId": data["photo_id"]}, user=user)
    assert reply.status == 200 and reply.data == {"photo_id": data["photo_id"]}
    assert name not in stored_files(app)
    assert photo_rows(app, user.user_id) == []


def test_delete_keeps_the_file_when_commit_fails(app, api, user, monkeypatch):
    data = upload(api, user, image_bytes()).data
    name = data["url"].rsplit("/", 1)[1]

    def failing_commit() -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", failing_commit)
    assert api.post("/api/photo/delete", {"photoId": data["photo_id"]}, user=user).status == 500
    monkeypatch.undo()
    assert name in stored_files(app)
    assert len(photo_rows(app, user.user_id)) == 1
    # A later, unrelated commit must not remove the file of the rolled-back delete.
    assert api.post("/api/user/update", {"nickname": "Later"}, user=user).code == 0
    assert name in stored_files(app)


def test_deleting_the_avatar_photo_clears_the_avatar(api, user):
    first = upload(api, user, image_bytes()).data
    second = upload(api, user, image_bytes()).data
    assert (
        api.post("/api/photo/avatar", {"photoId": first["photo_id"]}, user=user).data["avatar"]
        == first["url"]
    )
    api.post("/api/photo/delete", {"photoId": second["photo_id"]}, user=user)
    assert api.get("/api/user/show", user=user).data["avatar"] == first["url"]
    api.post("/api/photo/delete", {"photoId": first["photo_id"]}, user=user)
    assert api.get("/api/user/show", user=user).data["avatar"] is None


def test_reorder(api, user):
    ids = [upload(api, user, image_bytes()).data["photo_id"] for _ in range(3)]
    wanted = [ids[2], ids[0], ids[1]]
    reply = api.post("/api/photo/reorder", {"photoIds": ",".join(map(str, wanted))}, user=user)
    assert reply.status == 200, reply.body
    assert [p["photo_id"] for p in reply.data["list"]] == wanted
    listed = api.get("/api/photo/list", user=user).data["list"]
    assert [p["photo_id"] for p in listed] == wanted
    assert [p["position"] for p in listed] == [0, 1, 2]


@pytest.mark.parametrize("shape", ["missing_one", "duplicate", "garbage"])
def test_reorder_must_name_each_photo_once(api, user, shape):
    ids = [upload(api, user, image_bytes()).data["photo_id"] for _ in range(2)]
    value = {"missing_one": str(ids[0]), "duplicate": f"{ids[0]},{ids[0]},{ids[1]}", "garbage": "1;2"}[shape]
    reply = api.post("/api/photo/reorder", {"photoIds": value}, user=user)
    assert reply.status == 400 and reply.code == 300
    assert [p["photo_id"] for p in api.get("/api/photo/list", user=user).data["list"]] == ids


def test_update_avatar_accepts_own_photo_url(api, user):
    url = upload(api, user, image_bytes()).data["url"]
    reply = api.post("/api/user/update", {"avatar": url}, user=user)
    assert reply.status == 200 and reply.data["avatar"] == url


def test_other_users_photos_are_refused_everywhere(app, api, auth):
    me, other = auth.login(), auth.login()
    mine = upload(api, me, image_bytes()).data
    theirs = upload(api, other, image_bytes()).data
    for path, params in (
        ("/api/photo/delete", {"photoId": theirs["photo_id"]}),
        ("/api/photo/avatar", {"photoId": theirs["photo_id"]}),
        ("/api/photo/reorder", {"photoIds": f"{theirs['photo_id']},{mine['photo_id']}"}),
    ):
        reply = api.post(path, params, user=me)
        assert reply.status == 404 and reply.code == 511, (path, reply.body)
    reply = api.post("/api/user/update", {"avatar": theirs["url"]}, user=me)
    assert reply.status == 400 and reply.code == 300
    assert len(photo_rows(app, other.user_id)) == 1
    assert api.get("/api/user/show", user=me).data["avatar"] is None
    assert theirs["url"].rsplit("/", 1)[1] in stored_files(app)


def test_delete_all_photos_for_user(app, api, auth):
    victim, bystander = auth.login(), auth.login()
    names = [upload(api, victim, image_bytes()).data["url"].rsplit("/", 1)[1] for _ in range(2)]
    kept = upload(api, bystander, image_bytes()).data["url"].rsplit("/", 1)[1]
    api.post("/api/user/update", {"avatar": "/uploads/" + names[0]}, user=victim)
    with app.app_context():

        def delete_all() -> None:
            photo_service.delete_all_photos_for_user(victim.user_id)
            assert set(names) <= stored_files(app)  # nothing removed before the commit

        transactions.write(delete_all)
    assert not set(names) & stored_files(app)
    assert kept in stored_files(app)
    assert photo_rows(app, victim.user_id) == []
    assert api.get("/api/user/show", user=victim).data["avatar"] is None


def test_delete_all_photos_rolled_back_keeps_files(app, api, user):
    name = upload(api, user, image_bytes()).data["url"].rsplit("/", 1)[1]
    with app.app_context():

        def delete_all_then_fail() -> None:
            photo_service.delete_all_photos_for_user(user.user_id)
            raise RuntimeError("the caller's transaction fails")

        with pytest.raises(RuntimeError):
            transactions.write(delete_all_then_fail)
    assert name in stored_files(app)
    assert len(photo_rows(app, user.user_id)) == 1


def test_uploaded_photo_served_through_flask(client, api, user):
    content = image_bytes("JPEG")
    url = upload(api, user, content, "me.jpg").data["url"]
    response = client.get(url)
    assert response.status_code == 200 and response.data == content
    assert response.headers["Content-Type"] == "image/jpeg"
    assert client.get("/uploads/../datingtoday.sqlite3").status_code == 404


def test_uploads_not_served_when_disabled(base_config, migrated_database, api, user):
    from wsgi_app import create_app

    url = upload(api, user, image_bytes()).data["url"]
    quiet_app = create_app({**base_config, "SERVE_UPLOADS": False})
    response = quiet_app.test_client().get(url)
    assert response.status_code == 404 and response.is_json


def test_upload_and_fetch_through_live_tornado(live_api, live_server, auth, tmp_path):
    import urllib.request

    from tests.conftest import AuthActions

    user = AuthActions(live_api, auth.sms_inbox).login()
    content = image_bytes("PNG", (20, 10))
    path = tmp_path / "face.png"
    path.write_bytes(content)
    reply = live_api.post("/api/photo/upload", user=user, files={"photo": path})
    assert reply.status == 200, reply.body
    with urllib.request.urlopen(live_server.base_url + reply.data["url"], timeout=10) as response:
        assert response.status == 200
        assert response.read() == content


def _jpeg_with_gps_and_rotation() -> bytes:
    image = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825).update({1: "N", 2: (39.0, 54.0, 15.0), 3: "E", 4: (116.0, 24.0, 26.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_location_metadata_is_stripped_and_orientation_applied(app, api, user):
    content = _jpeg_with_gps_and_rotation()
    with Image.open(io.BytesIO(content)) as original:
        assert original.getexif().get_ifd(0x8825)  # the test image really has GPS
    reply = upload(api, user, content, "holiday.jpg")
    assert reply.status == 200, reply.body
    assert (reply.data["width"], reply.data["height"]) == (20, 40)  # displayed upright
    stored = Path(app.config["UPLOAD_FOLDER"], reply.data["url"].rsplit("/", 1)[1])
    assert reply.data["size_bytes"] == stored.stat().st_size
    with Image.open(stored) as kept:
        assert kept.format == "JPEG" and kept.size == (20, 40)
        assert "exif" not in kept.info and not kept.getexif()
    assert b"PhoneMaker" not in stored.read_bytes()


def test_photos_without_metadata_are_kept_byte_for_byte(app, api, user):
    content = image_bytes("JPEG", (30, 30))
    reply = upload(api, user, content)
    assert Path(app.config["UPLOAD_FOLDER"], reply.data["url"].rsplit("/", 1)[1]).read_bytes() == content


def test_uploads_are_rate_limited_per_user(app, api, auth):
    app.config["PHOTO_UPLOAD_LIMITS"] = [(2, 3600)]
    me, other = auth.login(), auth.login()
    assert [upload(api, me, image_bytes()).code for _ in range(2)] == [0, 0]
    refused = upload(api, me, image_bytes())
    assert refused.status == 429 and refused.code == 429 and "Retry-After" in refused.headers
    assert len(photo_rows(app, me.user_id)) == 2
    assert upload(api, other, image_bytes()).code == 0
