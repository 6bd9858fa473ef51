"""The request check of Flask requests done on the event loop (``async_handlers.wsgi_precheck``).

What must hold: the loop reads the parameters exactly as Flask does; a request it
checks gets the same answer as when the view checks it itself (success, each error
in its order, a Redis failure); what it cannot read exactly is left to the view.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from flask import Flask

from async_handlers.wsgi_precheck import signed_routes
from tests.conftest import LiveServer
from tests.helpers import ApiClient, SignedInUser
from wsgi_app.api.endpoint import request_params
from wsgi_app.extensions import db, redis_client
from wsgi_app.params import params_from_raw
from wsgi_app.services.auth import request_auth
from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.auth.tokens import cache_key, hash_token

QUERIES = [
    "",
    "a=1&a=2&b=&c",
    "%E4%BD%A0=%E5%A5%BD&x=a+b&y=a%2Bb",
    "bad=%FF%FE&ok=1",
    "k=v;x=y&&&=&==",
    "nickname=%F0%9F%98%80&userId=7",
]
BODIES = [b"", b"a=form&d=4", b"a=&a=second&nickname=%E5%A5%BD+%E5%A5%BD", b"x=%ZZ&y=%"]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("body", BODIES)
def test_parameters_read_on_the_loop_are_flasks(app: Flask, query: str, body: bytes) -> None:
    ctype = "application/x-www-form-urlencoded" if body else None
    with app.test_request_context(
        "/api/user/show", method="POST", query_string=query, data=body, content_type=ctype
    ):
        assert params_from_raw(query.encode("latin-1"), body) == request_params()


def test_only_signed_static_routes_are_checked_on_the_loop(app: Flask) -> None:
    routes = signed_routes(app)
    assert routes[("GET", "/api/user/show")].need_user
    assert routes[("GET", "/api/user/show")].prefetch is not None
    assert not routes[("POST", "/api/auth/sendsms")].need_user
    assert ("HEAD", "/api/user/show") not in routes
    assert all(not path.startswith("/uploads") for _, path in routes)


@pytest.fixture
def sync_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The views' own Redis round trips (the sync path), counted."""
    calls: list[str] = []
    real = request_auth.ask_redis

    def counted(client: Any, plan: Any, prefetch: Any = ()) -> Any:
        calls.append(plan.nonce_key)
        return real(client, plan, prefetch)

    monkeypatch.setattr(request_auth, "ask_redis", counted)
    yield calls


def test_a_signed_read_is_checked_on_the_loop(
    live_server: LiveServer, live_api: ApiClient, user: SignedInUser, sync_checks: list[str]
) -> None:
    sent_before = live_server.service.context.redis_batch.pipelines_sent
    reply = live_api.get("/api/user/show", user=user)
    assert reply.status == 200, reply.body
    assert reply.data["user_id"] == user.user_id
    assert sync_checks == []
    assert live_server.service.context.redis_batch.pipelines_sent > sent_before


def test_form_posts_are_checked_on_the_loop_too(
    live_api: ApiClient, user: SignedInUser, sync_checks: list[str]
) -> None:
    reply = live_api.post("/api/user/update", {"nickname": "好 好"}, user=user)
    assert reply.status == 200, reply.body
    assert reply.data["nickname"] == "好 好"
    assert sync_checks == []


def test_errors_found_on_the_loop_are_the_views(
    live_api: ApiClient, user: SignedInUser, sync_checks: list[str]
) -> None:
    first = live_api.get("/api/user/show", user=user, nonce="n-once")
    replay = live_api.get("/api/user/show", user=user, nonce="n-once")
    assert first.status == 200
    assert (replay.status, replay.code) == (409, 509)
    wrong_secret = replace(live_api.creds, secret="not-the-secret-" + live_api.creds.secret)
    forged = ApiClient(live_api.transport, wrong_secret).get("/api/user/show", user=user)
    assert (forged.status, forged.code) == (401, 506)
    missing = live_api.get("/api/user/show", {"userId": user.user_id})
    assert (missing.status, missing.code) == (401, 504)
    other = live_api.get("/api/user/show", {"userId": user.user_id + 1, "token": user.token})
    assert (other.status, other.code) == (401, 504)
    assert replay.headers["Content-Type"].startswith("application/json")
    assert replay.headers.get("X-Request-Id")
    assert sync_checks == []


def test_a_token_not_in_the_cache_is_read_from_the_database_by_the_view(
    app: Flask, live_api: ApiClient, user: SignedInUser
) -> None:
    with app.app_context():
        redis_client().delete(cache_key(hash_token(user.token)))
    reply = live_api.get("/api/user/show", user=user)
    assert reply.status == 200, reply.body


def test_an_appkey_not_yet_cached_is_checked_by_the_view(
    app: Flask, live_server: LiveServer, user: SignedInUser, sync_checks: list[str]
) -> None:
    from tests.conftest import make_application
    from tests.helpers import HttpTransport

    fresh: AppCredentials = make_application(app)
    reply = ApiClient(HttpTransport(live_server.base_url), fresh).get("/api/user/show", user=user)
    assert reply.status == 200, reply.body
    assert len(sync_checks) == 1


def test_a_redis_failure_on_the_loop_is_answered_by_the_view(
    live_server: LiveServer, live_api: ApiClient, user: SignedInUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(commands: Any) -> list[Any]:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(live_server.service.context.redis_batch, "run", down)
    reply = live_api.get("/api/user/show", user=user)
    assert (reply.status, reply.code) == (503, 521)
    assert "Traceback" not in str(reply.body)


@pytest.fixture
def view_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread each signed Flask view of the test was checked on (the view's thread)."""
    from wsgi_app.api import endpoint

    threads: list[threading.Thread] = []
    for name in ("judge_prechecked", "authenticate_and_prefetch"):
        real = getattr(endpoint, name)

        def recording(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            threads.append(threading.current_thread())
            return _real(*args, **kwargs)

        monkeypatch.setattr(endpoint, name, recording)
    return threads


def test_a_cached_own_profile_read_runs_on_the_loop_and_others_on_workers(
    app: Flask, live_server: LiveServer, live_api: ApiClient, user: SignedInUser, view_threads: list[Any]
) -> None:
    loop_thread = live_server._thread
    first = live_api.get("/api/user/show", user=user)  # fills the cache: a database read
    cached = live_api.get("/api/user/show", user=user)
    updated = live_api.post("/api/user/update", {"nickname": "Renamed"}, user=user)  # a write
    refilled = live_api.get("/api/user/show", user=user)  # the entry was dropped: a database read
    again = live_api.get("/api/user/show", user=user)
    replay = live_api.get("/api/user/show", user=user, nonce="seen")
    replayed = live_api.get("/api/user/show", user=user, nonce="seen")  # an error: no I/O either
    assert [r.status for r in (first, cached, updated, refilled, again, replay)] == [200] * 6
    assert (replayed.status, replayed.code) == (409, 509)
    assert cached.data == first.data and again.data == refilled.data == updated.data
    assert again.data["nickname"] == "Renamed"
    on_loop = [thread is loop_thread for thread in view_threads]
    assert on_loop == [False, True, False, False, True, True, True]
    with app.app_context():
        redis_client().delete(cache_key(hash_token(user.token)))
    assert live_api.get("/api/user/show", user=user).status == 200  # the token from the database
    assert view_threads[-1] is not loop_thread


def test_answered_from_prefetch_means_no_redis_or_database_call(
    app: Flask, api: ApiClient, user: SignedInUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsgi_app.services.profile import access, cache

    assert api.get("/api/user/show", user=user).status == 200  # cached now
    params = {"userId": str(user.user_id)}
    keys = access.own_profile_prefetch(params)
    with app.app_context():
        prefetched = dict(zip(keys, redis_client().mget(keys), strict=True))
        assert access.own_profile_from_prefetch(params, prefetched)
        assert not access.own_profile_from_prefetch({**params, "peerId": "99"}, prefetched)
        assert not access.own_profile_from_prefetch(params, {**prefetched, keys[-1]: None})

        def no_io(*_: Any, **__: Any) -> Any:
            raise AssertionError("I/O on a view said to answer from its prefetched values")

        monkeypatch.setattr(cache, "redis_client", no_io)
        monkeypatch.setattr(cache, "load_profile_row", no_io)
        monkeypatch.setattr(db.session, "execute", no_io)
        shown = access.show_profile(user.user_id, None, prefetched)
    assert shown["user_id"] == user.user_id
