"""An optional ``latlng`` on sign-in reports the position for nearby people."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.helpers import ApiClient
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.services.location import positions as location
from wsgi_app.services.location.positions import GridPoint

BEIJING = (39.9042, 116.4074)


def login(api: ApiClient, sms_inbox: Any, phone: str, **extra: str) -> Any:
    sent = api.post("/api/auth/sendsms", {"phone": phone})
    assert sent.status == 200, sent.body
    return api.post("/api/auth/login", {"phone": phone, "code": sms_inbox(phone), **extra}), sms_inbox(phone)


def stored(app: Flask, user_id: int) -> GridPoint | None:
    with app.app_context():
        row = db.session.get(UserLocation, user_id)
        return GridPoint(row.lat, row.lng) if row else None


def test_sign_in_with_latlng_stores_the_snapped_position(api: ApiClient, app: Flask, sms_inbox) -> None:
    reply, _ = login(api, sms_inbox, "13900000001", latlng="39.9042,116.4074")
    assert reply.status == 200, reply.body
    assert stored(app, reply.data["user_id"]) == location.snap_to_grid(*BEIJING)


def test_sign_in_without_latlng_stores_nothing(api: ApiClient, app: Flask, sms_inbox) -> None:
    reply, _ = login(api, sms_inbox, "13900000002")
    assert reply.status == 200 and stored(app, reply.data["user_id"]) is None


def test_bad_latlng_on_sign_in_is_502_and_does_not_spend_the_code(api: ApiClient, sms_inbox) -> None:
    reply, code = login(api, sms_inbox, "13900000003", latlng="north pole")
    assert (reply.status, reply.code) == (400, 502)
    retry = api.post("/api/auth/login", {"phone": "13900000003", "code": code})
    assert retry.status == 200, retry.body


def test_an_impossible_jump_on_sign_in_keeps_the_old_position_but_signs_in(
    api: ApiClient, app: Flask, sms_inbox
) -> None:
    first, _ = login(api, sms_inbox, "13900000004", latlng="39.9042,116.4074")
    with app.app_context():  # the per-phone SMS limit would stop a second code for a minute
        redis_client().delete("rl:sms:phone:+8613900000004")  # limits key the E.164 form
    second, _ = login(api, sms_inbox, "13900000004", latlng="31.2304,121.4737")  # Shanghai, at once
    assert second.status == 200, second.body
    assert stored(app, first.data["user_id"]) == location.snap_to_grid(*BEIJING)
