"""The nearby GET's lean path (``async_handlers.lean_get``) and its guessed cards read
(``async_handlers.nearby_query._guess``): the same answers as ever, fewer steps."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from tornado import httputil

from async_handlers import nearby_query
from async_handlers.base import params_of
from async_handlers.lean_get import RawQueryRequest, lean_params
from async_handlers.nearby import NearbyListHandler
from tests.conftest import LiveServer
from tests.helpers import ApiClient, SignedInUser, assert_native_answer
from tests.test_nearby import HOME, latlng, listed, nearby, place
from wsgi_app.errors import ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services.location import nearby_cells, nearby_viewer
from wsgi_app.services.location.grid import cell_of

PATH = "/api/user/nearby/list"


@pytest.fixture
def cached(app: Flask) -> None:
    """Cells, caller states and cards cached (also on the in-process stand-in)."""
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    app.config["NEARBY_QUERY_LIMITS"] = [(100_000, 60)]


def target(api: ApiClient, user: SignedInUser, **params: str) -> str:
    return f"{PATH}?{urlencode(api.signed('GET', PATH, {**user.params(), **params}))}"


def test_a_get_is_answered_without_a_request_handler_with_every_header(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler_get(_self: Any) -> None:
        raise AssertionError("the GET went through a RequestHandler")

    monkeypatch.setattr(NearbyListHandler, "get", handler_get)
    app.config["CORS_ORIGINS"] = ["https://app.example"]
    me, forged_for = auth.login(), auth.login()
    forged = SignedInUser(me.user_id, forged_for.token, me.phone)
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    headers = {"Origin": "https://app.example", "X-Request-Id": "nearby-1"}
    for path, status, code in [
        (target(live_api, me), 200, 0),
        (target(live_api, forged), 401, 504),  # another user's token
        (target(live_api, me, radius="0"), 400, 300),  # bad parameter
        (target(live_api, me, latlng="91,0"), 400, 502),  # bad position
        (f"{PATH}?userId={me.user_id}&radius=%FF", 400, 300),  # not UTF-8
        (f"{PATH}?radius=5", 400, 300),  # unsigned: no appkey
        (target(live_api, me), 200, 0),
    ]:
        conn.request("GET", path, headers=headers)  # one kept-alive connection throughout
        response = conn.getresponse()
        body = response.read()
        assert_native_answer(response, body, status, code, "nearby-1", "https://app.example")
        assert int(response.getheader("Content-Length") or -1) == len(body)
        assert response.getheader("Date")
    conn.close()


def test_a_failure_inside_is_a_500_envelope_and_the_preflight_still_answers(
    live_server: LiveServer, live_api: ApiClient, auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(nearby_query, "find_page", broken)
    reply = nearby(live_api, auth.login())
    assert (reply.status, reply.code) == (500, 500)
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    conn.request("OPTIONS", PATH)
    assert conn.getresponse().status == 204
    conn.close()


def _batches(server: LiveServer) -> int:
    return int(server.service.context.redis_batch.pipelines_sent)


def test_a_warm_page_reads_its_cards_with_its_cells_and_answers_the_same(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, cached: None
) -> None:
    me, near, also_near = auth.login(), auth.login(), auth.login()
    place(app, near, HOME)
    place(app, also_near, HOME)
    first = nearby(live_api, me, latlng=latlng(HOME), radius=1)  # one stage of bands: 0 and 1 km
    assert listed(first) == [near.user_id, also_near.user_id]
    assert nearby(live_api, me, radius=1).data == first.data  # the caller's state and cells cached
    before = _batches(live_server)
    again = nearby(live_api, me, radius=1)
    # request check + caller state; rate limit + cells + the guessed page's cards
    assert (again.data, _batches(live_server) - before) == (first.data, 2)


def test_a_first_page_of_a_session_takes_one_round_trip_more_than_a_repeat(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, cached: None
) -> None:
    """The caller's state not cached (a new session): the rate limit, then the database read,
    then the state stored with the cells and the guessed cards, and the same page."""
    me, near, also_near = auth.login(), auth.login(), auth.login()
    place(app, near, HOME)
    place(app, also_near, HOME)
    first = nearby(live_api, me, latlng=latlng(HOME), radius=1)
    assert nearby(live_api, me, radius=1).data == first.data  # cells read by this process: guessable
    with app.app_context():
        redis_client().delete(nearby_viewer.state_key(me.user_id))  # the state expired
    before = _batches(live_server)
    reply = nearby(live_api, me, radius=1)
    # request check + state (missed); rate limit; state stored + cells + the guessed page's cards
    assert (reply.data, _batches(live_server) - before) == (first.data, 3)
    with app.app_context():
        assert redis_client().get(nearby_viewer.state_key(me.user_id))  # stored for the next page
    before = _batches(live_server)
    assert nearby(live_api, me, radius=1).data == first.data
    assert _batches(live_server) - before == 2


def test_a_wrong_guess_is_never_answered(
    live_server: LiveServer, live_api: ApiClient, app: Flask, auth, cached: None
) -> None:
    me, near, also_near = auth.login(), auth.login(), auth.login()
    place(app, near, HOME)
    place(app, also_near, HOME)
    first = nearby(live_api, me, latlng=latlng(HOME), radius=1)
    assert sorted(listed(first)) == sorted([near.user_id, also_near.user_id])
    assert nearby(live_api, me, radius=1).data == first.data  # the caller's state and cells cached
    key = nearby_cells.cell_key(cell_of(*HOME))
    for guessed in (str(near.user_id), f"{near.user_id},999999999", ""):
        nearby_query._LAST_READ[key] = guessed  # as if the cell had been read so before
        before = _batches(live_server)
        reply = nearby(live_api, me, radius=1)
        assert reply.data == first.data, guessed
        assert _batches(live_server) - before == 3  # the cards read after the cells, as ever
        assert nearby_query._LAST_READ[key] != guessed  # the fresh read is the next guess


@pytest.mark.parametrize(
    "query",
    [
        "a=1&b=2",
        "b=2&a=1&a=3",
        "a=&b",
        "x=%E6%97%A5%E6%9C%AC+b&y=a%2Bb",
        "%C3%A9=1&a=2",  # a non-ASCII name: Tornado's reading (Latin-1)
        "a=%FF",  # not UTF-8: the same error
        "a=1&a=%FF",
        "sign=abc&token=t&userId=7&radius=5&page=1&pageCount=20&timestamp=1&nonce=n&appkey=K",
        "",
    ],
)
def test_lean_parameters_are_those_of_the_handlers(query: str) -> None:
    def request() -> RawQueryRequest:
        line = httputil.RequestStartLine("GET", f"{PATH}?{query}", "HTTP/1.1")
        headers = httputil.HTTPHeaders({"Host": "127.0.0.1"})
        return RawQueryRequest(None, line, headers=headers)  # type: ignore[arg-type]

    def read(parse: Callable[[], dict[str, str]]) -> Any:
        try:
            params = parse()
        except ApiError as exc:
            return exc.spec, str(exc)
        return list(params.items())

    slow = request()
    slow.parse_query()
    assert read(lambda: lean_params(request())) == read(lambda: params_of(slow))
