"""SMS sign-in: codes, tries, send limits, registration, and the same answer for everyone."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import AuthActions
from tests.helpers import ApiClient
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.user import User
from wsgi_app.services.auth.sign_in import _code_key

PHONE = "13912345678"


def _send(api: ApiClient, phone: str = PHONE, **kw):
    return api.post("/api/auth/sendsms", {"phone": phone}, **kw)


def _login(api: ApiClient, code: str | None, phone: str = PHONE):
    params = {"phone": phone}
    if code is not None:
        params["code"] = code
    return api.post("/api/auth/login", params)


def test_sign_in_registers_an_unknown_phone_then_signs_it_in_again(api, sms_inbox, app: Flask) -> None:
    _send(api)
    first = _login(api, sms_inbox(PHONE))
    assert first.status == 200, first.body
    assert set(first.data) == {"token", "expire_time", "user_id"}
    assert len(first.data["token"]) == 64
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]
    _send(api)
    second = _login(api, sms_inbox(PHONE))
    assert second.data["user_id"] == first.data["user_id"]
    assert second.data["token"] != first.data["token"]
    with app.app_context():
        assert db.session.query(User).filter_by(phone=PHONE).count() == 1


def test_expire_time_is_utc_in_contract_format(api, sms_inbox) -> None:
    import datetime as dt

    _send(api)
    reply = _login(api, sms_inbox(PHONE))
    expires = dt.datetime.strptime(reply.data["expire_time"], "%Y-%m-%d %H:%M:%S")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(days=6, hours=23) < expires - now <= dt.timedelta(days=7)


def test_codes_are_six_digits_and_stored_only_as_a_digest(api, sms_inbox, app: Flask) -> None:
    _send(api)
    code = sms_inbox(PHONE)
    assert code is not None and len(code) == 6 and code.isdigit()
    with app.app_context():
        stored = redis_client().hgetall(_code_key(PHONE))
    assert code not in str(stored)
    assert len(stored["digest"]) == 64


def test_the_code_is_echoed_only_when_configured(api, app: Flask, sms_inbox) -> None:
    assert "code" not in _send(api).data
    app.config["SMS_ECHO_CODE"] = True
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]
    reply = _send(api)
    assert reply.data["code"] == sms_inbox(PHONE)


def test_answer_is_the_same_for_registered_and_unknown_phones(api, auth: AuthActions, app: Flask) -> None:
    app.config["SMS_PHONE_LIMITS"] = [(10, 60)]
    known = auth.login("13700000001")
    assert known.user_id
    a = _send(api, "13700000001")
    b = _send(api, "13700000002")
    assert a.status == b.status == 200
    assert a.body["data"].keys() == b.body["data"].keys()
    assert a.body["code"] == b.body["code"] and a.body["msg"] == b.body["msg"]


def test_a_missing_code_never_signs_in(api, sms_inbox) -> None:
    _send(api)
    reply = _login(api, None)
    assert (reply.status, reply.code) == (400, 300)
    assert "code" in reply.body["msg"]
    assert _login(api, "").code == 300


def test_wrong_code_and_expired_code(api, sms_inbox, app: Flask) -> None:
    _send(api)
    good = sms_inbox(PHONE)
    wrong = f"{(int(good) + 1) % 10**6:06d}"
    reply = _login(api, wrong)
    assert (reply.status, reply.code) == (401, 503)
    with app.app_context():
        redis_client().delete(_code_key(PHONE))  # what expiry does
    assert _login(api, good).code == 503


def test_a_code_is_single_use(api, sms_inbox) -> None:
    _send(api)
    code = sms_inbox(PHONE)
    assert _login(api, code).status == 200
    assert _login(api, code).code == 503


def test_code_expires_after_its_ttl(api, sms_inbox, app: Flask) -> None:
    _send(api)
    with app.app_context():
        ttl = redis_client().ttl(_code_key(PHONE))
    assert 290 <= ttl <= 300


def test_brute_force_voids_the_code_after_five_wrong_tries(api, sms_inbox) -> None:
    _send(api)
    good = sms_inbox(PHONE)
    wrong = [f"{(int(good) + i) % 10**6:06d}" for i in range(1, 6)]
    for guess in wrong:
        assert _login(api, guess).code == 503
    reply = _login(api, good)  # the right code, but too late
    assert (reply.status, reply.code) == (401, 503)


def test_four_wrong_tries_still_allow_the_right_code(api, sms_inbox) -> None:
    _send(api)
    good = sms_inbox(PHONE)
    for i in range(1, 5):
        assert _login(api, f"{(int(good) + i) % 10**6:06d}").code == 503
    assert _login(api, good).status == 200


def test_send_limit_one_per_minute_per_phone(api) -> None:
    assert _send(api).status == 200
    reply = _send(api)
    assert (reply.status, reply.code) == (429, 429)
    assert 1 <= int(reply.headers["Retry-After"]) <= 60
    assert _send(api, "13912345679").status == 200  # another phone is unaffected


def test_send_limits_per_hour_and_day(api, app: Flask) -> None:
    from wsgi_app.services import rate_limit

    limits = app.config["SMS_PHONE_LIMITS"]
    assert limits == [(1, 60), (5, 3600), (10, 86400)]
    with app.app_context():
        client = redis_client()
        now = 1_000_000.0
        # Five sends spaced two minutes apart pass the minute limit, the sixth hits the hour.
        for i in range(5):
            assert rate_limit.hit(client, "t:phone", limits, now=now + 120 * i) == 0
        assert rate_limit.hit(client, "t:phone", limits, now=now + 600) > 0
        # Spread over a day, the eleventh send hits the daily limit.
        for i in range(5):
            assert rate_limit.hit(client, "t:day", limits, now=now + 4000 * i) == 0
        for i in range(5):
            assert rate_limit.hit(client, "t:day", limits, now=now + 30000 + 4000 * i) == 0
        assert rate_limit.hit(client, "t:day", limits, now=now + 60000) > 0
        assert rate_limit.hit(client, "t:day", limits, now=now + 86400 + 1) == 0


def test_send_limit_per_client_ip(api, app: Flask) -> None:
    app.config["SMS_IP_LIMITS"] = [(3, 3600)]
    for i in range(3):
        assert _send(api, f"1360000000{i}").status == 200
    reply = _send(api, "13600000009")
    assert (reply.status, reply.code) == (429, 429)
    assert "address" in reply.body["msg"]


def test_a_refused_send_does_not_use_up_the_allowance(app: Flask) -> None:
    from wsgi_app.services import rate_limit

    with app.app_context():
        client = redis_client()
        assert rate_limit.hit(client, "t:x", [(1, 60)], now=100.0) == 0
        for _ in range(5):
            assert rate_limit.hit(client, "t:x", [(1, 60)], now=110.0) > 0
        assert rate_limit.hit(client, "t:x", [(1, 60)], now=161.0) == 0


@pytest.mark.parametrize("phone", ["123", "1391234567a", "23912345678", "+0123", ""])
def test_malformed_phone(api, phone: str) -> None:
    reply = _send(api, phone)
    assert (reply.status, reply.code) == (400, 300)


def test_codes_come_from_a_csprng(monkeypatch, api, sms_inbox) -> None:
    import secrets

    calls = []
    real = secrets.randbelow

    def spy(n: int) -> int:
        calls.append(n)
        return real(n)

    monkeypatch.setattr("wsgi_app.services.auth.sign_in.secrets.randbelow", spy)
    _send(api)
    assert calls == [10**6]
