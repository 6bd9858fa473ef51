"""Tokens: hashed at rest, expiring, revocable, valid only for their own user."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from tests.conftest import AuthActions
from tests.helpers import ApiClient, SignedInUser
from wsgi_app.extensions import db
from wsgi_app.models.user import AuthToken
from wsgi_app.services.auth.tokens import hash_token
from wsgi_app.timeutil import utcnow


def _show(api: ApiClient, params: dict[str, str], **kw):
    return api.get("/api/user/show", params, **kw)


def test_token_is_stored_only_as_its_sha256(app: Flask, user: SignedInUser) -> None:
    with app.app_context():
        stored = db.session.execute(db.select(AuthToken.token_hash)).scalars().all()
    assert stored == [hash_token(user.token)]
    assert user.token not in stored


def test_token_has_256_random_bits(auth: AuthActions) -> None:
    a, b = auth.login(), auth.login()
    assert len(bytes.fromhex(a.token)) == 32
    assert a.token != b.token


def test_missing_token(api: ApiClient, user: SignedInUser) -> None:
    reply = _show(api, {"userId": str(user.user_id)})
    assert (reply.status, reply.code) == (401, 504)


def test_wrong_token(api: ApiClient, user: SignedInUser) -> None:
    reply = _show(api, {"userId": str(user.user_id), "token": "f" * 64})
    assert (reply.status, reply.code) == (401, 504)


def test_another_users_token_is_refused(api: ApiClient, auth: AuthActions) -> None:
    alice, bob = auth.login(), auth.login()
    reply = _show(api, {"userId": str(alice.user_id), "token": bob.token})
    assert (reply.status, reply.code) == (401, 504)
    assert "this user" in reply.body["msg"]


def test_expired_token_is_refused(api: ApiClient, app: Flask, user: SignedInUser) -> None:
    with app.app_context():
        db.session.execute(db.update(AuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    reply = _show(api, user.params())
    assert (reply.status, reply.code) == (401, 504)


def test_token_ttl_defaults_to_seven_days(app: Flask, user: SignedInUser) -> None:
    with app.app_context():
        row = db.session.execute(db.select(AuthToken)).scalar_one()
    assert timedelta(days=6, hours=23) < row.expires_at - row.created_at <= timedelta(days=7)


def test_logout_revokes_the_token_even_when_it_was_cached(api: ApiClient, user: SignedInUser) -> None:
    assert _show(api, user.params()).status == 200  # warms the token cache
    assert api.post("/api/auth/logout", user=user).status == 200
    reply = _show(api, user.params())
    assert (reply.status, reply.code) == (401, 504)


def test_logout_only_revokes_that_token(api: ApiClient, auth: AuthActions, app: Flask) -> None:
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]
    first = auth.login("13500000001")
    second = auth.login("13500000001")
    assert api.post("/api/auth/logout", user=first).status == 200
    assert _show(api, second.params()).status == 200


def test_bearer_header_is_accepted(api: ApiClient, user: SignedInUser) -> None:
    reply = _show(api, {}, headers={"Authorization": f"Bearer {user.token}"})
    assert reply.status == 200, reply.body
    assert reply.data["user_id"] == user.user_id


def test_bearer_token_with_another_users_id_is_refused(api: ApiClient, auth: AuthActions) -> None:
    alice, bob = auth.login(), auth.login()
    reply = _show(api, {"userId": str(alice.user_id)}, headers={"Authorization": f"Bearer {bob.token}"})
    assert (reply.status, reply.code) == (401, 504)


def test_show_yourself_has_the_contract_fields(api: ApiClient, user: SignedInUser) -> None:
    reply = _show(api, user.params())
    assert reply.status == 200
    assert set(reply.data) == {
        "user_id",
        "nickname",
        "birthday",
        "gender",
        "avatar",
        "height",
        "sexual",
        "education",
        "salary",
        "emotion",
        "phone",
    }
    assert reply.data["phone"] == user.phone
