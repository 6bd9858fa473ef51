"""Profile show and update: visibility, visits, partial and validated updates, protected fields."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.chat_support import send_text
from tests.social_helpers import block, get_user_row, set_user_fields, visit_rows
from wsgi_app.extensions import db
from wsgi_app.models.user import AUTHORITY_CONTACTS, AUTHORITY_EVERYONE, AUTHORITY_HIDDEN
from wsgi_app.services.profile.profiles import PROFILE_FIELDS
from wsgi_app.timeutil import utcnow

PROFILE_KEYS = set(PROFILE_FIELDS)


def test_show_self_has_contract_fields_and_phone(api, user):
    reply = api.get("/api/user/show", user=user)
    assert reply.status == 200 and reply.code == 0
    assert set(reply.data) >= PROFILE_KEYS
    assert reply.data["user_id"] == user.user_id
    assert reply.data["phone"] == user.phone
    assert set(reply.data) == PROFILE_KEYS | {"phone"}  # exactly the contract's fields


def test_settings_show_email_visibility_and_vip(app, api, user):
    reply = api.get("/api/user/settings", user=user)
    assert reply.status == 200
    assert reply.data == {
        "user_id": user.user_id,
        "email": None,
        "authority": AUTHORITY_EVERYONE,
        "is_vip": False,
        "vip_expires_at": None,
    }
    set_user_fields(app, user.user_id, vip_expires_at=datetime(2099, 1, 2, 3, 4, 5))
    api.post("/api/user/update", {"email": "Me@Example.com", "authority": AUTHORITY_CONTACTS}, user=user)
    reply = api.get("/api/user/settings", user=user)
    assert reply.data["email"] == "me@example.com" and reply.data["authority"] == AUTHORITY_CONTACTS
    assert reply.data["is_vip"] is True and reply.data["vip_expires_at"] == "2099-01-02 03:04:05"


def test_show_peer_hides_private_fields_and_records_visit(app, api, auth):
    me, peer = auth.login(), auth.login()
    reply = api.get("/api/user/show", {"peerId": peer.user_id}, user=me)
    assert reply.status == 200
    assert set(reply.data) == PROFILE_KEYS
    assert reply.data["user_id"] == peer.user_id
    rows = visit_rows(app, peer.user_id)
    assert [(r.visitor_id, r.visit_count, r.is_read) for r in rows] == [(me.user_id, 1, False)]


def test_repeated_visits_fold_into_one_row(app, api, auth):
    me, peer = auth.login(), auth.login()
    api.get("/api/user/show", {"peerId": peer.user_id}, user=me)
    first = visit_rows(app, peer.user_id)[0]
    with app.app_context():
        db.session.execute(db.text("UPDATE visits SET is_read = :t"), {"t": True})
        db.session.commit()
    api.get("/api/user/show", {"peerId": peer.user_id}, user=me)
    rows = visit_rows(app, peer.user_id)
    assert len(rows) == 1
    assert rows[0].visit_count == 2
    assert rows[0].is_read is False
    assert rows[0].last_visited_at >= first.last_visited_at
    assert rows[0].first_visited_at == first.first_visited_at


def test_showing_yourself_records_no_visit(app, api, user):
    api.get("/api/user/show", {"peerId": user.user_id}, user=user)
    api.get("/api/user/show", user=user)
    assert visit_rows(app, user.user_id) == []


def test_missing_user_is_501(api, user):
    reply = api.get("/api/user/show", {"peerId": 999999}, user=user)
    assert reply.status == 404 and reply.code == 501


@pytest.mark.parametrize("authority", [AUTHORITY_HIDDEN, AUTHORITY_CONTACTS])
def test_invisible_peer_answers_like_missing_user_and_records_nothing(app, api, auth, authority):
    me, peer = auth.login(), auth.login()
    set_user_fields(app, peer.user_id, authority=authority)
    reply = api.get("/api/user/show", {"peerId": peer.user_id}, user=me)
    missing = api.get("/api/user/show", {"peerId": 999999}, user=me)
    assert (reply.status, reply.body) == (missing.status, missing.body)
    assert visit_rows(app, peer.user_id) == []


def test_contacts_only_profile_visible_to_people_the_owner_writes_to(app, api, auth):
    me, peer = auth.login(), auth.login()
    set_user_fields(app, peer.user_id, authority=AUTHORITY_CONTACTS)
    # A stranger's message does not unlock the profile...
    assert send_text(api, me, peer, "hello there").status == 200
    assert api.get("/api/user/show", {"peerId": peer.user_id}, user=me).code == 501
    # ...the owner writing back does.
    assert send_text(api, peer, me, "hi!").status == 200
    assert api.get("/api/user/show", {"peerId": peer.user_id}, user=me).code == 0


@pytest.mark.parametrize("direction", ["i_blocked", "blocked_me"])
def test_blocked_peer_is_501(app, api, auth, direction):
    me, peer = auth.login(), auth.login()
    if direction == "i_blocked":
        block(app, me.user_id, peer.user_id)
    else:
        block(app, peer.user_id, me.user_id)
    reply = api.get("/api/user/show", {"peerId": peer.user_id}, user=me)
    assert reply.code == 501
    assert visit_rows(app, peer.user_id) == []


def test_show_needs_a_valid_token(api, auth):
    me, peer = auth.login(), auth.login()
    reply = api.get("/api/user/show", {"userId": peer.user_id, "token": me.token})
    assert reply.status == 401 and reply.code == 504


def test_update_is_partial_and_returns_profile(app, api, user):
    first = api.post(
        "/api/user/update",
        {
            "nickname": "  小明  ",
            "gender": 1,
            "height": 180,
            "birthday": "1990-05-17",
            "email": "A@Example.com",
        },
        user=user,
    )
    assert first.status == 200, first.body
    assert first.data["nickname"] == "小明"
    assert set(first.data) == PROFILE_KEYS | {"phone"}
    assert get_user_row(app, user.user_id)["email"] == "a@example.com"
    second = api.post("/api/user/update", {"salary": 3}, user=user)
    assert second.status == 200
    expected = {**first.data, "salary": 3}
    assert second.data == expected
    shown = api.get("/api/user/show", user=user).data
    assert shown == expected
    assert shown["birthday"] == "1990-05-17" and shown["height"] == 180 and shown["gender"] == 1


def test_update_authority_only_touches_the_callers_profile(app, api, auth):
    me, other = auth.login(), auth.login()
    reply = api.post("/api/user/update", {"authority": AUTHORITY_HIDDEN, "peerId": other.user_id}, user=me)
    assert reply.status == 200
    assert get_user_row(app, me.user_id)["authority"] == AUTHORITY_HIDDEN
    assert get_user_row(app, other.user_id)["authority"] == AUTHORITY_EVERYONE


def test_protected_fields_never_change(app, api, auth):
    me, other = auth.login(), auth.login()
    before = get_user_row(app, me.user_id)
    other_before = get_user_row(app, other.user_id)
    reply = api.post(
        "/api/user/update",
        {
            "phone": "13999999999",
            "vip_expires_at": "2099-01-01 00:00:00",
            "vipExpiresAt": "2099-01-01 00:00:00",
            "id": other.user_id,
            "user_id": other.user_id,
            "created_at": "2000-01-01 00:00:00",
            "nickname": "Changed",
        },
        user=me,
    )
    assert reply.status == 200, reply.body
    after = get_user_row(app, me.user_id)
    for field in ("id", "phone", "vip_expires_at", "created_at", "authority"):
        assert after[field] == before[field], field
    assert after["nickname"] == "Changed"
    assert get_user_row(app, other.user_id) == other_before
    assert reply.data["phone"] == me.phone


@pytest.mark.parametrize(
    "nickname",
    ["   ", "x" * 33, "bad\x00name", "tab\tname", "new\nline", "rtl\u202eoverride"],
)
def test_bad_nickname_is_505(app, api, user, nickname):
    set_user_fields(app, user.user_id, nickname="Before")
    reply = api.post("/api/user/update", {"nickname": nickname, "gender": 2}, user=user)
    assert reply.status == 400 and reply.code == 505, reply.body
    row = get_user_row(app, user.user_id)
    assert row["nickname"] == "Before" and row["gender"] == 0  # nothing stored half-way


def test_emoji_and_32_char_nickname_accepted(api, user):
    name = "😀" + "名" * 31
    reply = api.post("/api/user/update", {"nickname": name}, user=user)
    assert reply.status == 200 and reply.data["nickname"] == name


def _birthday_years_ago(years: int, extra_days: int = 0) -> str:
    today = utcnow().date()
    try:
        anniversary = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        anniversary = today.replace(year=today.year - years, day=28)
    return (anniversary + timedelta(days=extra_days)).isoformat()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("gender", 3),
        ("gender", -1),
        ("gender", "male"),
        ("sexual", 4),
        ("emotion", 4),
        ("education", 6),
        ("salary", 0),
        ("salary", 7),
        ("height", 99),
        ("height", 251),
        ("authority", 3),
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("birthday", "2001-02-30"),
        ("birthday", "yesterday"),
        ("birthday", _birthday_years_ago(18, extra_days=1)),
        ("birthday", _birthday_years_ago(121)),
        ("avatar", "/uploads/someone-elses.png"),
        ("avatar", "https://evil.example/x.png"),
    ],
)
def test_invalid_values_are_300_and_change_nothing(app, api, user, name, value):
    before = get_user_row(app, user.user_id)
    reply = api.post("/api/user/update", {name: value, "nickname": "Tried"}, user=user)
    assert reply.status == 400 and reply.code == 300, reply.body
    assert get_user_row(app, user.user_id) == before


def test_age_bounds_accepted(api, user):
    assert api.post("/api/user/update", {"birthday": _birthday_years_ago(18)}, user=user).code == 0
    assert api.post("/api/user/update", {"birthday": _birthday_years_ago(120)}, user=user).code == 0


def test_update_needs_a_token(api, user):
    reply = api.post("/api/user/update", {"userId": user.user_id, "nickname": "x"})
    assert reply.status == 401 and reply.code == 504


@pytest.mark.parametrize("peer_id", ["0", "-3", "abc", "1.5"])
def test_malformed_peer_id_is_300(api, user, peer_id):
    for path in ("/api/user/show", "/api/photo/list", "/api/user/labels"):
        reply = api.get(path, {"peerId": peer_id}, user=user)
        assert reply.status == 400 and reply.code == 300, path
