"""Account deletion: everything about the person goes at once, or nothing does."""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask

from tests.helpers import ApiClient, SignedInUser
from tests.social_helpers import image_bytes, upload_file
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Block, Label, Photo, Report, UserLabel, Visit
from wsgi_app.models.user import AuthToken, User
from wsgi_app.models.vip import Order, Product
from wsgi_app.services import upload_files
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location import positions as location
from wsgi_app.services.vip import payments
from wsgi_app.services.vip import purchases as vip


def count(model: Any, *conditions: Any) -> int:
    return len(db.session.execute(db.select(model).where(*conditions)).scalars().all())


def build_social_life(app: Flask, api: ApiClient, alice: SignedInUser, bob: SignedInUser, carol) -> dict:
    """Give alice one of everything, with bob around; returns what to look for afterwards."""
    upload = api.post("/api/photo/upload", files={"photo": upload_file(image_bytes())}, user=alice)
    assert upload.status == 200, upload.body
    with app.app_context():
        vip.seed_products()
        photo = db.session.execute(db.select(Photo).where(Photo.user_id == alice.user_id)).scalar_one()
        photo_file = upload_files.upload_path(photo.filename)
        label = Label(name="hiking", category="hobby")
        db.session.add(label)
        db.session.flush()
        db.session.add_all(
            [
                UserLabel(user_id=alice.user_id, label_id=label.id),
                UserLabel(user_id=bob.user_id, label_id=label.id),
                Visit(visitor_id=alice.user_id, visited_id=bob.user_id),
                Visit(visitor_id=bob.user_id, visited_id=alice.user_id),
                Visit(visitor_id=bob.user_id, visited_id=carol.user_id),
                Block(blocker_id=alice.user_id, blocked_id=carol.user_id),
                Block(blocker_id=carol.user_id, blocked_id=alice.user_id),
                Block(blocker_id=bob.user_id, blocked_id=carol.user_id),
                Contact(user_id=alice.user_id, peer_id=bob.user_id),
                Contact(user_id=bob.user_id, peer_id=alice.user_id),
                Message(sender_id=alice.user_id, recipient_id=bob.user_id, client_msg_id="m1", body="hi"),
                Message(sender_id=bob.user_id, recipient_id=alice.user_id, client_msg_id="m2", body="hey"),
                Message(
                    sender_id=bob.user_id,
                    recipient_id=alice.user_id,
                    client_msg_id="m4",
                    kind="image",
                    media_filename="chatmedia-test.png",
                ),
                Message(sender_id=bob.user_id, recipient_id=carol.user_id, client_msg_id="m3", body="yo"),
            ]
        )
        db.session.commit()
        media_file = upload_files.upload_path("chatmedia-test.png")
        with open(media_file, "wb") as handle:
            handle.write(image_bytes())
        location.report_location(alice.user_id, 31.2304, 121.4737)
        location.report_location(bob.user_id, 31.2404, 121.4837)
        monthly = db.session.execute(db.select(Product).where(Product.code == "vip_monthly")).scalar_one()
        product_id = monthly.id
    order_no = api.post("/api/vip/order", {"productId": product_id}, user=alice).data["order_no"]
    with app.app_context():
        params = payments.fake_provider().signed_callback(order_no, 3000, "CNY")
    assert api.flask_client.post("/api/payment/callback", data=params).status_code == 200
    assert api.post("/api/report/add", {"peerId": bob.user_id, "reason": "spam"}, user=alice).status == 200
    assert api.post("/api/report/add", {"peerId": alice.user_id, "reason": "other"}, user=bob).status == 200
    assert os.path.exists(photo_file)
    return {"photo_file": photo_file, "media_file": media_file, "order_no": order_no}


@pytest.fixture
def people(auth) -> tuple[SignedInUser, SignedInUser, SignedInUser]:
    return auth.login(), auth.login(), auth.login()


def test_delete_removes_everything_about_the_person(app: Flask, api: ApiClient, auth, people) -> None:
    alice, bob, carol = people
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]  # alice signs in twice
    second_session = auth.login(alice.phone)
    found = build_social_life(app, api, alice, bob, carol)
    app.config["NEARBY_CELL_CACHE_SECS"] = 300  # cache nearby cells even on the in-process stand-in
    with app.app_context():
        alice_cell = location.cell_of(31.2304, 121.4737)
        assert alice.user_id in nearby_cells.load_cells([alice_cell])[alice_cell]  # now cached

    reply = api.post("/api/account/delete", user=alice)
    assert reply.status == 200, reply.body
    assert reply.data == {"deleted_user_id": alice.user_id}

    a = alice.user_id
    with app.app_context():
        assert db.session.get(User, a) is None
        assert count(Photo, Photo.user_id == a) == 0
        assert count(UserLabel, UserLabel.user_id == a) == 0
        assert count(Visit, (Visit.visitor_id == a) | (Visit.visited_id == a)) == 0
        assert count(Block, (Block.blocker_id == a) | (Block.blocked_id == a)) == 0
        assert count(Contact, (Contact.user_id == a) | (Contact.peer_id == a)) == 0
        assert count(Message, (Message.sender_id == a) | (Message.recipient_id == a)) == 0
        assert count(UserLocation, UserLocation.user_id == a) == 0
        assert count(AuthToken, AuthToken.user_id == a) == 0
        assert redis_client().get(nearby_cells.cell_key(alice_cell)) is None  # the cached cell is dropped
        assert a not in nearby_cells.load_cells([alice_cell])[alice_cell]
        # Kept, anonymised.
        kept = db.session.execute(db.select(Order).where(Order.order_no == found["order_no"])).scalar_one()
        assert (kept.user_id, kept.status, kept.amount_cents) == (None, "paid", 3000)
        reports = db.session.execute(db.select(Report.reporter_id, Report.reported_id, Report.reason)).all()
        assert sorted(reports, key=lambda r: r.reason) == [
            (bob.user_id, None, "other"),
            (None, bob.user_id, "spam"),
        ]
        # Other people's things stay.
        assert count(UserLabel, UserLabel.user_id == bob.user_id) == 1
        assert count(Visit, Visit.visitor_id == bob.user_id) == 1
        assert count(Block, Block.blocker_id == bob.user_id) == 1
        assert count(Message, Message.sender_id == bob.user_id) == 1
        assert count(UserLocation, UserLocation.user_id == bob.user_id) == 1
    assert not os.path.exists(found["photo_file"])
    assert not os.path.exists(found["media_file"])
    for session in (alice, second_session):
        gone = api.get("/api/user/show", user=session)
        assert (gone.status, gone.code) == (401, 504)
    assert api.get("/api/user/show", {"peerId": a}, user=bob).code == 501


def test_phone_can_register_again_as_a_new_user(app: Flask, api: ApiClient, auth) -> None:
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]  # the phone signs in twice
    alice = auth.login()
    assert api.post("/api/user/update", {"nickname": "Alice"}, user=alice).status == 200
    assert api.post("/api/account/delete", user=alice).status == 200
    again = auth.login(alice.phone)
    assert again.user_id != alice.user_id
    profile = api.get("/api/user/show", user=again)
    assert profile.status == 200
    assert profile.data["phone"] == alice.phone and profile.data["nickname"] != "Alice"


def test_a_failure_half_way_leaves_everything_in_place(
    app: Flask, api: ApiClient, people, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, carol = people
    found = build_social_life(app, api, alice, bob, carol)

    def broken(user_id: int) -> None:
        raise RuntimeError("simulated failure after the photos were deleted")

    monkeypatch.setattr("wsgi_app.services.auth.account.forget_location", broken)
    reply = api.post("/api/account/delete", user=alice)
    assert (reply.status, reply.code) == (500, 500)
    with app.app_context():
        assert db.session.get(User, alice.user_id) is not None
        assert count(Photo, Photo.user_id == alice.user_id) == 1
        assert count(AuthToken, AuthToken.user_id == alice.user_id) == 1
        assert count(Visit, Visit.visitor_id == alice.user_id) == 1
        assert count(UserLocation, UserLocation.user_id == alice.user_id) == 1
        assert count(Block, Block.blocker_id == alice.user_id) == 1
    assert os.path.exists(found["photo_file"])
    assert os.path.exists(found["media_file"])
    assert api.get("/api/user/show", user=alice).status == 200  # the token still works


def test_delete_needs_the_persons_own_token(app: Flask, api: ApiClient, people) -> None:
    alice, bob, _ = people
    forged = api.post("/api/account/delete", {"userId": alice.user_id, "token": bob.token})
    assert (forged.status, forged.code) == (401, 504)
    unsigned = api.flask_client.post("/api/account/delete", data=alice.params())
    assert (unsigned.status_code, unsigned.get_json()["code"]) == (400, 300)
    with app.app_context():
        assert db.session.get(User, alice.user_id) is not None
        assert db.session.get(User, bob.user_id) is not None
