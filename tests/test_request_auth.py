"""The one request check on both sides: Flask (sync executor) and native handlers (asyncio).

Same core, same answers: a token only for its own user, logout beats the token
cache, a nonce spent only by a correctly signed request, and (issue 11) made-up
appkeys never grow a cache, md5-legacy replays by moving a digit between
``timestamp`` and ``nonce`` are refused.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import ApiClient
from wsgi_app.errors import APPKEY_UNKNOWN, NONCE_REPLAYED, SIGN_INVALID, TOKEN_INVALID
from wsgi_app.services.auth import applications, signing

FLASK_USER_PATH = "/api/user/settings"  # a Flask endpoint that needs a user
NATIVE_USER_PATH = "/api/chat/poll"  # a native one (no cursor: answers at once)


@pytest.fixture(params=["flask", "native"])
def side(request: pytest.FixtureRequest) -> tuple[ApiClient, str]:
    """The API client and a user-level path served by that side."""
    if request.param == "flask":
        return request.getfixturevalue("api"), FLASK_USER_PATH
    return request.getfixturevalue("live_api"), NATIVE_USER_PATH


def test_a_token_answers_only_for_its_own_user(side, auth) -> None:
    client, path = side
    alice, bob = auth.login(), auth.login()
    assert client.get(path, user=alice).status == 200
    stolen = client.get(path, {"userId": str(bob.user_id), "token": alice.token})
    assert stolen.status == 401 and stolen.code == TOKEN_INVALID.code
    bogus = client.get(path, {"userId": str(alice.user_id), "token": "x" * 64})
    assert bogus.code == TOKEN_INVALID.code
    assert client.get(path, {"userId": str(alice.user_id)}).code == TOKEN_INVALID.code


def test_logout_beats_the_token_cache(side, api: ApiClient, auth) -> None:
    client, path = side
    alice = auth.login()
    assert client.get(path, user=alice).status == 200  # the token is now cached
    assert client.get(path, user=alice).status == 200
    assert api.post("/api/auth/logout", user=alice).status == 200
    after = client.get(path, user=alice)
    assert after.status == 401 and after.code == TOKEN_INVALID.code


def test_only_a_correctly_signed_request_spends_a_nonce(side, auth) -> None:
    client, path = side
    alice = auth.login()
    forged = client.signed("GET", path, alice.params(), nonce="once-only")
    forged["sign"] = "0" * 64
    assert client.transport.send("GET", path, forged, None, {}).code == SIGN_INVALID.code
    assert client.get(path, user=alice, nonce="once-only").status == 200
    replay = client.get(path, user=alice, nonce="once-only")
    assert replay.status == 409 and replay.code == NONCE_REPLAYED.code


def test_a_huge_made_up_appkey_is_refused_before_any_lookup(api: ApiClient) -> None:
    applications.clear_cache()
    for size in (33, 2 * 1024 * 1024):
        params = api.signed("POST", "/api/auth/sendsms", {"phone": "13900000001"}, nonce=f"n{size}")
        params["appkey"] = "A" * size
        reply = api.transport.send("POST", "/api/auth/sendsms", None, params, {})
        assert reply.status == 401 and reply.code == APPKEY_UNKNOWN.code
    assert applications.cache_sizes() == (0, 0)


def test_unknown_appkeys_are_cached_within_a_bound_and_never_evict_real_ones(
    api: ApiClient, app, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(applications._misses, "max_entries", 8)
    applications.clear_cache()
    assert api.post("/api/auth/sendsms", {"phone": "13900000001"}).status == 200
    for i in range(20):
        params = api.signed("POST", "/api/auth/sendsms", {"phone": "13900000001"}, nonce=f"u{i}")
        params["appkey"] = f"MADEUP{i:04d}"
        assert api.transport.send("POST", "/api/auth/sendsms", None, params, {}).code == APPKEY_UNKNOWN.code
    hits, misses = applications.cache_sizes()
    assert hits == 1 and misses == 8
    assert applications.cached_credentials(api.creds.appkey) == (True, api.creds)


def test_md5_legacy_replay_by_moving_a_digit_between_timestamp_and_nonce(legacy_api: ApiClient) -> None:
    path, body = "/api/auth/sendsms", {"phone": "13900000001"}
    timestamp, nonce = f"{int(time.time())}.12", "345"
    first = legacy_api.signed("POST", path, body, timestamp=timestamp, nonce=nonce)
    moved = {**first, "timestamp": timestamp[:-1], "nonce": timestamp[-1] + nonce}
    # Same signature: md5-legacy glues timestamp and nonce together.
    creds = legacy_api.creds
    assert signing.md5_legacy_sign(moved, creds.secret) == first["sign"]
    assert legacy_api.transport.send("POST", path, None, first, {}).status == 200
    again = legacy_api.transport.send("POST", path, None, moved, {})
    assert again.status == 409 and again.code == NONCE_REPLAYED.code


def test_hmac_nonce_alone_is_the_replay_key() -> None:
    assert signing.replay_key("hmac-sha256", "1700000000.1", "2345") == "2345"
    assert signing.replay_key("md5-legacy", "1700000000.1", "2345") == "1700000000.12345"


def test_an_overlong_timestamp_is_a_parameter_error(api: ApiClient) -> None:
    padded = "0" * 40 + str(int(time.time()))
    reply = api.post("/api/auth/sendsms", {"phone": "13900000001"}, timestamp=padded)
    assert reply.status == 400 and reply.code == 300


def test_a_proxy_retry_with_the_same_request_id_passes_on_both_sides(side, auth) -> None:
    client, path = side
    alice = auth.login()
    signed = client.signed("GET", path, alice.params())

    def send(headers: dict[str, str]) -> int:
        return client.transport.send("GET", path, signed, None, headers).code

    assert send({"X-Request-Id": "r-1"}) == 0
    assert send({"X-Request-Id": "r-1"}) == 0  # nginx resent it to another process
    assert send({"X-Request-Id": "r-2"}) == NONCE_REPLAYED.code
    assert send({}) == NONCE_REPLAYED.code
