"""``flask seed-demo``: bulk fake users that are consistent, re-runnable and never real phones."""

from __future__ import annotations

import os

from sqlalchemy import func, or_

from wsgi_app.demo.seed import DEMO_PHONE_PREFIX
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Label, Photo, UserLabel, Visit
from wsgi_app.models.user import User


def run_seed(app, users: int, seed: int):
    result = app.test_cli_runner().invoke(
        args=["seed-demo", "--users", str(users), "--batch-size", "100", "--seed", str(seed)]
    )
    assert result.exit_code == 0, result.output
    return result


def count(model) -> int:
    return db.session.execute(db.select(func.count()).select_from(model)).scalar_one()


def test_seed_demo_fills_consistent_data_and_reruns(app, auth):
    real = auth.login()
    result = run_seed(app, 200, seed=1)
    assert "200 users" in result.output
    with app.app_context():
        demo = list(db.session.execute(db.select(User).where(User.id != real.user_id)).scalars())
        assert len(demo) == 200
        assert all(u.phone.startswith(DEMO_PHONE_PREFIX) and len(u.phone) == 11 for u in demo)
        assert all(u.nickname and 1 <= len(u.nickname) <= 32 for u in demo)
        assert {u.gender for u in demo} <= {1, 2} and all(
            u.height is not None and 100 <= u.height <= 250 for u in demo
        )
        assert count(UserLocation) == 200
        assert count(Label) > 0 and count(UserLabel) > 0 and count(Photo) > 0
        assert count(Visit) > 0 and count(Message) > 0 and count(Contact) > 0
        # Avatars are the URL of one of the owner's own photos.
        for user in demo:
            if user.avatar:
                owner = db.session.execute(
                    db.select(Photo.user_id).where(Photo.filename == user.avatar.rsplit("/", 1)[1])
                ).scalar_one()
                assert owner == user.id
        assert (
            db.session.execute(db.select(Visit).where(Visit.visitor_id == Visit.visited_id)).first() is None
        )
        # Each contact points at the latest message of its pair, both sides present.
        for contact in db.session.execute(db.select(Contact)).scalars():
            latest = db.session.execute(
                db.select(func.max(Message.id)).where(
                    or_(
                        (Message.sender_id == contact.user_id) & (Message.recipient_id == contact.peer_id),
                        (Message.sender_id == contact.peer_id) & (Message.recipient_id == contact.user_id),
                    )
                )
            ).scalar_one()
            assert contact.last_message_id == latest
            assert db.session.get(Contact, (contact.peer_id, contact.user_id)) is not None
        phones_before = {u.phone for u in demo}

    run_seed(app, 150, seed=1)  # same seed again: must not collide with the first run
    with app.app_context():
        phones = set(db.session.execute(db.select(User.phone).where(User.id != real.user_id)).scalars())
        assert len(phones) == 350 and phones_before < phones
        assert count(UserLocation) == 350
        assert db.session.get_one(User, real.user_id).phone == real.phone


def test_demo_phones_can_never_sign_in(api):
    reply = api.post("/api/auth/sendsms", {"phone": DEMO_PHONE_PREFIX + "00000001"})
    assert reply.status == 400 and reply.code == 300


def test_seeded_users_show_up_in_the_api(app, api, auth):
    run_seed(app, 200, seed=2)
    viewer = auth.login()
    hot = api.get("/api/user/hot/list", {"pageCount": 50}, user=viewer)
    assert hot.status == 200 and hot.data["total"] > 0 and len(hot.data["list"]) == 50
    top = hot.data["list"][0]
    assert api.get("/api/user/show", {"peerId": top["user_id"]}, user=viewer).code == 0
    assert api.get("/api/user/labels", {"peerId": top["user_id"]}, user=viewer).code == 0
    assert api.get("/api/photo/list", {"peerId": top["user_id"]}, user=viewer).code == 0
    with app.app_context():
        most_visited = db.session.execute(
            db.select(Visit.visited_id, func.count(Visit.id))
            .join(User, User.id == Visit.visited_id)
            .where(User.authority == 1)
            .group_by(Visit.visited_id)
            .order_by(func.count(Visit.id).desc())
        ).first()
        assert most_visited is not None
        top_visitors = db.session.execute(
            db.select(func.count(Visit.id)).where(Visit.visited_id == top["user_id"])
        ).scalar_one()
    assert top_visitors == most_visited[1]


def test_every_demo_photo_and_avatar_url_serves_an_image(app, client):
    """The rows name files that exist: the app (or nginx) serves each, as a real JPEG of the
    size the row says; deleting one person's demo photo leaves everyone else's."""
    from io import BytesIO

    from PIL import Image

    run_seed(app, 60, seed=3)
    with app.app_context():
        photos = list(db.session.execute(db.select(Photo)).scalars())
        avatars = [u.avatar for u in db.session.execute(db.select(User)).scalars() if u.avatar]
        prefix = app.config["UPLOAD_URL_PATH"].rstrip("/") + "/"
    assert photos and avatars
    urls = {prefix + photo.filename for photo in photos} | set(avatars)
    sizes = {prefix + photo.filename: (photo.size_bytes, photo.width, photo.height) for photo in photos}
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        image = Image.open(BytesIO(answer.data))
        assert image.format == "JPEG"
        if url in sizes:
            assert sizes[url] == (len(answer.data), *image.size)
    first, second = photos[0], next(p for p in photos if p.user_id != photos[0].user_id)
    with app.app_context():
        from wsgi_app.services.profile import photos as photo_service
        from wsgi_app.services.upload_files import upload_path

        photo_service.delete_photo(first.user_id, first.id)
        assert not os.path.exists(upload_path(first.filename))
        assert os.path.exists(upload_path(second.filename))
