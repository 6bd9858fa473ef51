"""Request signing: both methods, the contract's worked example, and every refusal."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

import pytest

from datingtoday_client import signing as client_signing
from tests.helpers import ApiClient
from wsgi_app.errors import PARAM_INVALID, SIGN_INVALID, TIMESTAMP_OUT_OF_WINDOW, ApiError
from wsgi_app.services.auth import signing


def test_md5_legacy_matches_the_contract_worked_example() -> None:
    params = {
        "phone": "18922986865",
        "code": "97532",
        "timestamp": "1565325436.5",
        "nonce": "123456",
        "appkey": "432ABZ",
    }
    expected_string = "code=97532&phone=189229868651565325436.51234561AE32B09224"
    assert signing.md5_legacy_string(params, "1AE32B09224") == expected_string
    assert signing.md5_legacy_sign(params, "1AE32B09224") == hashlib.md5(expected_string.encode()).hexdigest()


def test_md5_legacy_puts_the_token_between_message_and_timestamp() -> None:
    params = {"userId": "7", "token": "tok", "timestamp": "10", "nonce": "n", "appkey": "k"}
    assert signing.md5_legacy_string(params, "s") == "userId=7tok10ns"


def test_hmac_string_covers_method_path_and_every_param_but_sign() -> None:
    params = {"b": "2", "a": "x y&z", "appkey": "K", "sign": "ignored"}
    text = signing.hmac_string_to_sign("post", "/api/auth/login", params)
    assert text == "DT-HMAC-SHA256\nPOST\n/api/auth/login\na=x%20y%26z&appkey=K&b=2"


def test_hmac_delimiters_defeat_the_md5_concatenation_forgery() -> None:
    # md5-legacy cannot tell "foo=bar" from "foob=ar" once the pairs are glued with the secret;
    # the HMAC canonical string keeps names and values apart.
    a = signing.hmac_string_to_sign("GET", "/p", {"foo": "bar"})
    b = signing.hmac_string_to_sign("GET", "/p", {"foob": "ar"})
    assert a != b


def test_hmac_sign_depends_on_path_and_method() -> None:
    params = {"x": "1"}
    base = signing.hmac_sha256_sign("GET", "/api/a", params, "secret")
    assert base != signing.hmac_sha256_sign("POST", "/api/a", params, "secret")
    assert base != signing.hmac_sha256_sign("GET", "/api/b", params, "secret")
    assert base != signing.hmac_sha256_sign("GET", "/api/a", params, "other")


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("1565325436", 1565325436.0), ("1565325436.5", 1565325436.5), ("1565325436500", 1565325436.5)],
)
def test_timestamps_in_seconds_fractions_or_milliseconds(raw: str, seconds: float) -> None:
    assert signing.parse_timestamp(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-5", ""])
def test_malformed_timestamp_is_a_parameter_error(raw: str) -> None:
    with pytest.raises(ApiError) as err:
        signing.parse_timestamp(raw)
    assert err.value.spec is PARAM_INVALID


def test_timestamp_window_both_ways() -> None:
    now = 1_700_000_000.0
    signing.check_timestamp(str(now - 299), 300, now)
    signing.check_timestamp(str(now + 299), 300, now)
    for off in (-301, 301):
        with pytest.raises(ApiError) as err:
            signing.check_timestamp(str(now + off), 300, now)
        assert err.value.spec is TIMESTAMP_OUT_OF_WINDOW


def test_verify_sign_rejects_a_tampered_param() -> None:
    signed = signing.sign_params(
        {"phone": "13800000000"},
        appkey="K",
        secret="S",
        sign_method="hmac-sha256",
        http_method="POST",
        path="/x",
    )
    signing.verify_sign("hmac-sha256", "POST", "/x", signed, "S")
    with pytest.raises(ApiError) as err:
        signing.verify_sign("hmac-sha256", "POST", "/x", {**signed, "phone": "13800000001"}, "S")
    assert err.value.spec is SIGN_INVALID


# -- through the API -------------------------------------------------------------

HEALTHLESS_PATH = "/api/auth/sendsms"


def _post_sms(api: ApiClient, **overrides: str):
    return api.post(HEALTHLESS_PATH, {"phone": "13900000001"}, **overrides)


@pytest.mark.parametrize("fixture", ["api", "legacy_api"])
def test_both_methods_are_accepted(request: pytest.FixtureRequest, fixture: str) -> None:
    client: ApiClient = request.getfixturevalue(fixture)
    reply = _post_sms(client)
    assert reply.status == 200, reply.body
    assert reply.body == {"code": 0, "msg": "success", "data": {"phone": "13900000001"}}


def test_millisecond_timestamps_are_accepted(api: ApiClient) -> None:
    reply = _post_sms(api, timestamp=str(int(time.time() * 1000)))
    assert reply.status == 200, reply.body


def test_replayed_nonce_is_rejected(api: ApiClient) -> None:
    first = api.post("/api/auth/sendsms", {"phone": "13900000001"}, nonce="same-nonce")
    again = api.post("/api/auth/sendsms", {"phone": "13900000002"}, nonce="same-nonce")
    assert first.status == 200
    assert (again.status, again.code) == (409, 509)


def test_a_nonce_is_only_spent_by_a_correctly_signed_request(api: ApiClient) -> None:
    forged = api.signed("POST", "/api/auth/sendsms", {"phone": "13900000001"}, nonce="n-1")
    forged["sign"] = "0" * 64
    bad = api.transport.send("POST", "/api/auth/sendsms", None, forged, {})
    good = api.post("/api/auth/sendsms", {"phone": "13900000001"}, nonce="n-1")
    assert bad.code == 506
    assert good.status == 200, good.body


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_and_future_timestamps_are_rejected(api: ApiClient, offset: int) -> None:
    reply = _post_sms(api, timestamp=str(int(time.time()) + offset))
    assert (reply.status, reply.code) == (401, 508)


@pytest.mark.parametrize("fixture", ["api", "legacy_api"])
def test_wrong_sign_is_rejected(request: pytest.FixtureRequest, fixture: str) -> None:
    client: ApiClient = request.getfixturevalue(fixture)
    signed = client.signed("POST", HEALTHLESS_PATH, {"phone": "13900000001"})
    signed["phone"] = "13900000009"  # tampered after signing
    reply = client.transport.send("POST", HEALTHLESS_PATH, None, signed, {})
    assert (reply.status, reply.code) == (401, 506)


def test_hmac_sign_for_another_path_is_rejected(api: ApiClient) -> None:
    signed = api.signed("POST", "/api/auth/login", {"phone": "13900000001"})
    reply = api.transport.send("POST", HEALTHLESS_PATH, None, signed, {})
    assert reply.code == 506


def test_unknown_appkey_is_rejected_even_with_an_empty_secret_signature(api: ApiClient) -> None:
    # The original signed unknown appkeys with an empty secret: that must not work.
    signed = signing.sign_params(
        {"phone": "13900000001"},
        appkey="NOPE",
        secret="",
        sign_method="md5-legacy",
        http_method="POST",
        path=HEALTHLESS_PATH,
    )
    reply = api.transport.send("POST", HEALTHLESS_PATH, None, signed, {})
    assert (reply.status, reply.code) == (401, 507)


@pytest.mark.parametrize("missing", ["appkey", "timestamp", "nonce", "sign"])
def test_missing_signing_parameters(api: ApiClient, missing: str) -> None:
    signed = api.signed("POST", HEALTHLESS_PATH, {"phone": "13900000001"})
    del signed[missing]
    reply = api.transport.send("POST", HEALTHLESS_PATH, None, signed, {})
    assert (reply.status, reply.code) == (400, 300)
    assert missing in reply.body["msg"]


def test_form_value_wins_over_query_and_is_what_gets_signed(api: ApiClient) -> None:
    signed = api.signed("POST", HEALTHLESS_PATH, {"phone": "13900000001"})
    query = {"phone": "not-a-phone"}
    reply = api.transport.send("POST", HEALTHLESS_PATH, query, signed, {})
    assert reply.status == 200, reply.body
    assert reply.data["phone"] == "13900000001"


def test_get_with_a_form_body_like_original_clients(api: ApiClient, user) -> None:
    reply = api.call("GET", "/api/user/show", user=user, in_query=False)
    assert reply.status == 200, reply.body
    assert reply.data["user_id"] == user.user_id


@pytest.mark.parametrize(
    "text",
    ["", "abcXYZ019-_.~", "a b", " lead", "trail ", "a+b", "a&b=c", "100%", "é", "日本", "a/b", "~.~", "-"],
)
def test_percent_encoding_shortcut_is_quote(text: str) -> None:
    """The unreserved-only shortcut of ``_pct`` gives exactly what ``quote`` gives."""
    assert client_signing._pct(text) == quote(text, safe="-_.~")
