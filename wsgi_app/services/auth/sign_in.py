"""SMS sign-in: send a one-time code, then trade phone + code for a token.

Codes are 6 digits from a CSPRNG, valid ``SMS_CODE_TTL_SECS`` (5 min), single
use, stored in Redis only as an HMAC keyed with ``SECRET_KEY`` (a leaked Redis
dump does not reveal them), void after ``SMS_CODE_MAX_TRIES`` wrong tries.
Phones are canonical and SMS-capable (:mod:`wsgi_app.services.auth.phones`).
Sends are rate-limited per client IP, per phone, per country and globally
(the last two cap what SMS pumping can cost). The answer to a send is the
same whether or not the phone is registered; an unknown phone is registered on
its first successful login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from flask import current_app
from sqlalchemy.exc import IntegrityError

from wsgi_app import transactions
from wsgi_app.errors import SMS_CODE_INVALID, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.user import User
from wsgi_app.services import rate_limit
from wsgi_app.services.auth import phones, sms, tokens
from wsgi_app.services.auth.phones import Phone

# Mainland mobile numbers (as the original) or E.164 with a leading +.
PHONE_PATTERN = r"1[3-9]\d{9}|\+[1-9]\d{6,14}"
CODE_PATTERN = r"\d{6}"


@dataclass(frozen=True)
class SignInResult:
    user_id: int
    token: str
    expires_at: datetime


def _code_key(phone: str) -> str:
    return f"sms:code:{phones.canonical_or_raw(phone)}"  # one key per phone, however spelled


def _code_digest(phone: str, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def parse_phone(raw: str) -> Phone:
    return phones.parse_phone(raw, current_app.config["SMS_ALLOWED_REGIONS"])


def send_login_code(raw_phone: str, client_ip: str) -> str:
    """Check the number, rate-limit, then generate, store and send a fresh code; returns it."""
    cfg = current_app.config
    client = redis_client()
    parsed = parse_phone(raw_phone)
    phone = parsed.e164
    rate_limit.enforce(client, f"sms:ip:{client_ip}", cfg["SMS_IP_LIMITS"], "codes from this address")
    rate_limit.enforce(client, f"sms:phone:{phone}", cfg["SMS_PHONE_LIMITS"], "codes for this phone")
    rate_limit.enforce(
        client, f"sms:country:{parsed.region}", cfg["SMS_COUNTRY_LIMITS"], "codes to this country"
    )
    rate_limit.enforce(client, "sms:global", cfg["SMS_GLOBAL_LIMITS"], "codes, try again later")
    code = f"{secrets.randbelow(10**6):06d}"
    key = _code_key(phone)
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping={"digest": _code_digest(phone, code), "tries": 0})
    pipe.expire(key, cfg["SMS_CODE_TTL_SECS"])
    pipe.execute()
    sms.gateway().send_login_code(phone, code)
    return code


def _consume_code(phone: str, code: str) -> None:
    """Accept the code once, or count a wrong try (voiding the code at the limit)."""
    client = redis_client()
    key = _code_key(phone)
    tries = client.hincrby(key, "tries", 1)
    digest = cast(str | None, client.hget(key, "digest"))  # the client decodes responses
    if digest is None:
        client.delete(key)  # hincrby created an empty hash for a phone with no code
        raise ApiError(SMS_CODE_INVALID)
    if tries > current_app.config["SMS_CODE_MAX_TRIES"]:
        client.delete(key)
        raise ApiError(SMS_CODE_INVALID, "too many wrong tries, request a new code")
    if not hmac.compare_digest(digest, _code_digest(phone, code)):
        if tries >= current_app.config["SMS_CODE_MAX_TRIES"]:
            client.delete(key)
        raise ApiError(SMS_CODE_INVALID)
    if client.delete(key) != 1:  # a concurrent login consumed it first
        raise ApiError(SMS_CODE_INVALID)


def _find_user(phone: Phone) -> User | None:
    """The account of this phone under any spelling; the oldest if two were made before the rule."""
    query = db.select(User).where(User.phone.in_(phones.account_keys(phone))).order_by(User.id).limit(1)
    return db.session.execute(query).scalar_one_or_none()


def _find_or_register(phone: Phone) -> User:
    user = _find_user(phone)
    if user is not None:
        return user
    user = User(phone=phone.account_key)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # registered concurrently by another request
        db.session.rollback()
        existing = _find_user(phone)
        assert existing is not None
        return existing
    user.nickname = f"user{user.id}"
    return user


def sign_in(raw_phone: str, code: str) -> SignInResult:
    phone = parse_phone(raw_phone)
    _consume_code(phone.e164, code)

    def work() -> tuple[int, tokens.IssuedToken]:
        user = _find_or_register(phone)
        return user.id, tokens.issue_token(user.id)

    user_id, issued = transactions.write(work, what="sign-in")
    return SignInResult(user_id, issued.token, issued.expires_at)
