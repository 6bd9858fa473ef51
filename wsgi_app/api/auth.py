"""``/api/auth``: SMS code, sign-in, sign-out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from wsgi_app import transactions
from wsgi_app.api.endpoint import endpoint
from wsgi_app.errors import LATLNG_INVALID, PARAM_INVALID, RATE_LIMITED, SMS_CODE_INVALID
from wsgi_app.params import Param
from wsgi_app.services.auth import sign_in, tokens
from wsgi_app.services.auth.request_auth import Caller, UserCaller
from wsgi_app.services.location import positions as location
from wsgi_app.timeutil import format_wire_datetime

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

PHONE = Param(
    "phone",
    required=True,
    pattern=sign_in.PHONE_PATTERN,
    description="mobile number: mainland (13800138000) or E.164 (+8613800138000), one phone either way",
)


@bp.route("/sendsms", methods=["POST"])
@endpoint(
    summary="Send a sign-in code by SMS",
    auth="app",
    params=[PHONE],
    errors=[PARAM_INVALID, RATE_LIMITED],
    description="Same answer for registered and unregistered phones. Only mobile numbers of the "
    "allowed countries (SMS_ALLOWED_REGIONS): premium-rate, toll-free, landline and satellite "
    "numbers are 300. Limits: 1/60 s, 5/hour, 10/day per phone, per client address, per "
    "country and in all (429).",
    data_schema={
        "type": "object",
        "required": ["phone"],
        "properties": {"phone": {"type": "string"}, "code": {"type": "string"}},
    },
)
def send_sms(caller: Caller, phone: str) -> dict[str, Any]:
    code = sign_in.send_login_code(phone, request.remote_addr or "unknown")
    data: dict[str, Any] = {"phone": phone}
    if current_app.config["SMS_ECHO_CODE"]:
        data["code"] = code
    return data


@bp.route("/login", methods=["POST"])
@endpoint(
    summary="Sign in (and register on first sign-in) with phone and SMS code",
    auth="app",
    params=[
        PHONE,
        Param("code", required=True, pattern=sign_in.CODE_PATTERN),
        Param(
            "latlng",
            max_length=64,
            error=LATLNG_INVALID,
            description='optional "lat,lng": your position for nearby people (stored snapped to ~1 km)',
        ),
    ],
    errors=[SMS_CODE_INVALID, LATLNG_INVALID],
    data_schema={
        "type": "object",
        "required": ["token", "expire_time", "user_id"],
        "properties": {
            "token": {"type": "string"},
            "expire_time": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
            "user_id": {"type": "integer"},
        },
    },
)
def login(caller: Caller, phone: str, code: str, latlng: str | None = None) -> dict[str, Any]:
    position = location.parse_latlng(latlng) if latlng else None  # 502 before the code is spent
    result = sign_in.sign_in(phone, code)
    if position is not None:
        location.report_location_on_sign_in(result.user_id, *position)
    return {
        "token": result.token,
        "expire_time": format_wire_datetime(result.expires_at),
        "user_id": result.user_id,
    }


@bp.route("/logout", methods=["POST"])
@endpoint(summary="Revoke the token of this request", data_schema={"type": "object"})
def logout(caller: UserCaller) -> dict[str, Any]:
    token_hash = caller.token_hash
    transactions.write(lambda: tokens.revoke(token_hash), what="logout")
    return {}
