"""SMS pumping: canonical phones (one person, one allowance, one account), SMS-capable numbers of
allowed countries only, and the per-country and global budgets."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.helpers import ApiClient
from wsgi_app.extensions import db
from wsgi_app.models.user import User

NATIONAL = "13540760219"
E164 = "+8613540760219"


def _send(api: ApiClient, phone: str):
    return api.post("/api/auth/sendsms", {"phone": phone})


def _login(api: ApiClient, phone: str, code: str | None):
    return api.post("/api/auth/login", {"phone": phone, "code": code or "000000"})


def test_two_spellings_are_one_phone_with_one_allowance(api: ApiClient, sms_inbox) -> None:
    assert _send(api, NATIONAL).status == 200
    again = _send(api, E164)
    assert (again.status, again.code) == (429, 429)  # the per-phone minute limit is shared


def test_two_spellings_sign_in_to_one_account(app: Flask, api: ApiClient, sms_inbox) -> None:
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]
    _send(api, NATIONAL)
    first = _login(api, E164, sms_inbox(NATIONAL))
    _send(api, E164)
    second = _login(api, NATIONAL, sms_inbox(E164))
    assert first.status == second.status == 200
    assert first.data["user_id"] == second.data["user_id"]
    with app.app_context():
        assert db.session.execute(db.select(User.phone)).scalars().all() == [NATIONAL]


@pytest.mark.parametrize("stored", [E164, NATIONAL])
def test_an_existing_account_under_either_spelling_keeps_signing_in(
    app: Flask, api, sms_inbox, stored
) -> None:
    with app.app_context():
        user = User(phone=stored, nickname="old")
        db.session.add(user)
        db.session.commit()
        old_id = user.id
    for spelling in (NATIONAL, E164):
        app.config["SMS_PHONE_LIMITS"] = [(10, 60)]
        _send(api, spelling)
        reply = _login(api, spelling, sms_inbox(spelling))
        assert reply.data["user_id"] == old_id


def test_two_accounts_made_before_the_rule_resolve_to_the_oldest(app: Flask, api, sms_inbox) -> None:
    with app.app_context():
        older, newer = User(phone=E164), User(phone=NATIONAL)
        db.session.add(older)
        db.session.flush()
        db.session.add(newer)
        db.session.commit()
        older_id = older.id
    _send(api, NATIONAL)
    assert _login(api, NATIONAL, sms_inbox(NATIONAL)).data["user_id"] == older_id


@pytest.mark.parametrize(
    "phone, regions",
    [
        ("+881612345678", ["CN", "001"]),  # satellite (Iridium)
        ("+8616812345", ["CN"]),  # premium rate
        ("+868001234567", ["CN"]),  # toll free
        ("+861012345678", ["CN"]),  # a Beijing landline
        ("+449012345678", ["CN", "GB"]),  # premium rate
        ("+18002345678", ["CN", "US"]),  # toll free
        ("+447400123456", ["CN"]),  # a mobile, but not an allowed country
        ("+8610000000001", ["CN"]),  # not a valid number
    ],
)
def test_numbers_that_cannot_take_a_personal_sms_are_refused(
    app: Flask, api, sms_inbox, phone, regions
) -> None:
    app.config["SMS_ALLOWED_REGIONS"] = regions
    reply = _send(api, phone)
    assert (reply.status, reply.code) == (400, 300), reply.body
    assert sms_inbox(phone) is None


def test_an_allowed_country_mobile_is_accepted(app: Flask, api, sms_inbox) -> None:
    app.config["SMS_ALLOWED_REGIONS"] = ["CN", "GB"]
    assert _send(api, "+447400123456").status == 200
    assert sms_inbox("+447400123456") is not None


@pytest.mark.parametrize("budget", ["SMS_COUNTRY_LIMITS", "SMS_GLOBAL_LIMITS"])
def test_country_and_global_budgets_cap_sends_to_many_phones(app: Flask, api, sms_inbox, budget) -> None:
    app.config[budget] = [(3, 3600)]
    statuses = [_send(api, f"1390000020{i}").status for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert sms_inbox("13900000203") is None
