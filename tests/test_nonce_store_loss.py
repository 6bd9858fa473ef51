"""Replays stay refused when Redis loses its memory (the nonce store's epoch, auth.core).

A signed write captured before the loss and replayed after it is refused on every path
(Flask through the test client, Flask behind the server's precheck, native); a request
signed after the loss passes; a failover reset moves the epoch forward, never back.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask

from tests.helpers import ApiClient, SignedInUser
from wsgi_app.errors import TIMESTAMP_OUT_OF_WINDOW, ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services.auth import core as auth_core
from wsgi_app.services.auth.applications import AppCredentials


def _lose_redis_memory(app: Flask) -> None:
    with app.app_context():
        redis_client().flushdb()  # what a restart without persistence leaves


def _captured_update(api: ApiClient, user: SignedInUser, height: int) -> dict[str, str]:
    return api.signed("POST", "/api/user/update", {**user.params(), "height": height})


def _send(api: ApiClient, form: dict[str, str]):
    return api.transport.send("POST", "/api/user/update", None, dict(form), {})


@pytest.mark.parametrize("client_fixture", ["api", "live_api"])
def test_a_captured_write_replayed_after_redis_lost_its_memory_is_refused(
    request: pytest.FixtureRequest, app: Flask, auth, client_fixture: str
) -> None:
    client: ApiClient = request.getfixturevalue(client_fixture)
    me = auth.login()
    captured = _captured_update(client, me, 170)
    assert _send(client, captured).status == 200
    later = client.post("/api/user/update", {"height": 180}, user=me)
    assert later.status == 200
    assert (_send(client, captured).status, _send(client, captured).code) == (409, 509)  # as ever
    _lose_redis_memory(app)
    replay = _send(client, captured)
    assert (replay.status, replay.code) == (401, TIMESTAMP_OUT_OF_WINDOW.code), replay.body
    assert "sign again" in replay.body["msg"]
    shown = client.get("/api/user/show", user=me)
    assert shown.status == 200 and shown.data["height"] == 180  # the replay changed nothing


def test_a_request_signed_after_the_loss_passes(api: ApiClient, app: Flask, auth) -> None:
    me = auth.login()
    signed_at = f"{time.time():.3f}"
    time.sleep(0.01)  # timestamps have millisecond resolution: one the same as the epoch passes
    _lose_redis_memory(app)
    first = api.get("/api/user/show", user=me, timestamp=signed_at)  # signed before: refused once
    assert first.code == TIMESTAMP_OUT_OF_WINDOW.code
    time.sleep(0.01)  # timestamps have millisecond resolution
    again = api.get("/api/user/show", user=me)  # the client signs again
    assert again.status == 200, again.body


def test_every_process_reads_the_same_epoch(app: Flask) -> None:
    with app.app_context():
        client = redis_client()
        client.flushdb()
        first = [client.execute_command(*c) for c in auth_core.epoch_commands(now=1000.0)]
        second = [client.execute_command(*c) for c in auth_core.epoch_commands(now=2000.0)]
    assert first[-1] == second[-1] == "1000.000"


def test_a_failover_reset_moves_the_epoch_forward_never_back(app: Flask) -> None:
    with app.app_context():
        client = redis_client()
        client.set(auth_core.NONCE_EPOCH_KEY, "5000.000")
        [back] = [client.execute_command(*c) for c in auth_core.reset_epoch_commands(now=4000.0)]
        [forward] = [client.execute_command(*c) for c in auth_core.reset_epoch_commands(now=6000.5)]
    assert float(back) == 5000.0 and float(forward) == 6000.5


def test_a_request_signed_before_a_failover_reset_is_refused(
    api: ApiClient, app: Flask, auth, creds: AppCredentials
) -> None:
    me = auth.login()
    captured = _captured_update(api, me, 170)
    time.sleep(0.01)
    with app.app_context():
        for command in auth_core.reset_epoch_commands():
            redis_client().execute_command(*command)
    reply = _send(api, captured)  # its nonce was never spent here: only the epoch refuses it
    assert (reply.status, reply.code) == (401, TIMESTAMP_OUT_OF_WINDOW.code)


def test_judge_without_an_epoch_refuses() -> None:
    plan = auth_core.AuthPlan(
        app_id=1, appkey="k", nonce_key="nonce:k:n", nonce_ttl_secs=600, need_user=False, signed_at=1e9
    )
    with pytest.raises(ApiError) as refused:
        auth_core.judge(plan, [None, "OK"])
    assert refused.value.spec is TIMESTAMP_OUT_OF_WINDOW
    assert auth_core.judge(plan, ["0", "OK"]) is not None
