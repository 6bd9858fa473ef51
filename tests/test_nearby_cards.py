"""Nearby list cards cached in Redis (``services.location.nearby_cards``): a page of cached
cards reads nothing from the database, and every committed change shows at the next page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from tests.chat_support import block
from tests.helpers import ApiClient
from tests.test_nearby import HOME, latlng, listed, nearby, offset, place
from wsgi_app import errors, transactions
from wsgi_app.extensions import db
from wsgi_app.models.location import UserLocation
from wsgi_app.services.location import nearby_cards
from wsgi_app.services.location.grid import Cell, snap_to_grid
from wsgi_app.services.profile import cache as profile_cache


@pytest.fixture
def cached(app: Flask) -> None:
    """Cells, caller states and cards cached (also on the in-process stand-in)."""
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    app.config["NEARBY_QUERY_LIMITS"] = [(100_000, 60)]


@pytest.fixture
def card_queries(app: Flask) -> Iterator[list[str]]:
    """SQL statements that read people's cards or positions, while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "nickname" in statement or "user_locations" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_page_of_cached_cards_reads_nothing_from_the_database(
    live_api: ApiClient, app: Flask, auth, cached: None, card_queries: list[str]
) -> None:
    me, near, far = auth.login(), auth.login(), auth.login()
    place(app, near, offset(1, 0))
    place(app, far, offset(6, 0))
    first = nearby(live_api, me, latlng=latlng(HOME))
    assert listed(first) == [near.user_id, far.user_id]
    assert nearby(live_api, me).data == first.data  # (a reported position: the state read once more)
    card_queries.clear()
    again = nearby(live_api, me)
    assert again.data == first.data and card_queries == []


def test_every_committed_change_of_a_listed_person_shows_at_the_next_page(
    live_api: ApiClient, app: Flask, auth, cached: None
) -> None:
    me, other, third = auth.login(), auth.login(), auth.login()
    place(app, other, offset(1, 0))
    place(app, third, offset(2, 0))
    assert listed(nearby(live_api, me, latlng=latlng(HOME))) == [other.user_id, third.user_id]
    assert live_api.post("/api/user/update", {"nickname": "renamed"}, user=other).status == 200
    reply = nearby(live_api, me)
    assert [item["nickname"] for item in reply.data["list"]][0] == "renamed"
    with app.app_context():  # a position changed outside the services, saying so: the card goes

        def move() -> None:
            row = db.session.get_one(UserLocation, third.user_id)
            moved_to = snap_to_grid(*offset(6, 0))
            row.lat, row.lng = moved_to.lat, moved_to.lng
            profile_cache.invalidate_after_commit([third.user_id])

        transactions.write(move)
    bands = {item["user_id"]: item["distance_km"] for item in nearby(live_api, me).data["list"]}
    assert bands == {other.user_id: 1, third.user_id: 6}
    block(app, third, me)  # a block written outside the service, saying so, counts at once
    assert listed(nearby(live_api, me)) == [other.user_id]


def test_a_page_of_cards_is_the_envelope_it_always_was() -> None:
    """The page is assembled from cached JSON pieces: byte for byte what the envelope of
    the same data as a dict gives (keys sorted, compact, UTF-8)."""
    row = (7, 'Zoë "x" | \x1f', None, 2, "https://a/b.jpg", 170, 0, 1, None, 0, 1, 39.9, 116.4, _now())
    text = nearby_cards.encode(row)
    cell = Cell(*map(int, text.split("|", 2)[:2]))
    data, stale = nearby_cards.page_json(30, [(3, 7, cell)], [f"5|{text}"], 0, 20)
    assert stale == set()
    expected_card = {
        "user_id": 7,
        "nickname": 'Zoë "x" | \x1f',
        "birthday": None,
        "gender": 2,
        "avatar": "https://a/b.jpg",
        "height": 170,
        "sexual": 0,
        "education": 1,
        "salary": None,
        "emotion": 0,
        "distance_km": 3,
        "distance": "3 km",
    }
    page = {"total": 30, "list": [expected_card], "has_next": True, "located": True}
    assert f'{{"code":0,"data":{data},"msg":"success"}}' == errors.dumps_envelope(errors.success_body(page))
    elsewhere = Cell(cell.row + 1, cell.col)
    assert nearby_cards.page_json(1, [(0, 7, elsewhere)], [f"5|{text}"], 0, 20)[1] == {elsewhere, cell}
    hidden = nearby_cards.encode((*row[:10], 0, *row[11:]))
    assert nearby_cards.page_json(1, [(0, 7, cell)], [f"5|{hidden}"], 0, 20) == (
        '{"has_next":false,"list":[],"located":true,"total":1}',
        {cell},
    )
    assert json.loads(data)["list"][0]["nickname"] == expected_card["nickname"]


def _now() -> Any:
    from wsgi_app.timeutil import utcnow

    return utcnow()


def test_a_card_fill_racing_a_change_is_refused(app: Flask, auth, cached: None) -> None:
    """The card was read from the database, then a change committed and invalidated before
    the fill: the old card is not stored (same versions as the profile cache); without a
    racing change it is."""
    from wsgi_app.extensions import redis_client
    from wsgi_app.services.profile import cache as profile_cache

    racer, calm = auth.login(), auth.login()
    place(app, racer, offset(1, 0))
    place(app, calm, offset(1, 0))
    with app.app_context():
        client = redis_client()
        ids = [racer.user_id, calm.user_id]
        epoch, generations = profile_cache.read_generations(client, ids)
        cards = {user_id: "old" for user_id in ids}
        profile_cache.invalidate([racer.user_id])  # what the racing writer's commit does
        profile_cache.fill_cards(client, epoch, generations, cards, 60)
        assert client.get(profile_cache.card_key(racer.user_id)) is None
        assert client.get(profile_cache.card_key(calm.user_id)) == f"{epoch}|old"
        profile_cache.invalidate([calm.user_id])  # and every committed change drops it
        assert client.get(profile_cache.card_key(calm.user_id)) is None


def test_a_move_and_a_block_through_the_services_show_at_the_next_page(
    live_api: ApiClient, app: Flask, auth, cached: None
) -> None:
    """The services say what they changed (``on_commit``): a moved person's cached card and the
    blocking pair's cached states go after the commit."""
    me, other, third = auth.login(), auth.login(), auth.login()
    place(app, other, offset(1, 0))
    place(app, third, offset(2, 0))
    assert listed(nearby(live_api, me, latlng=latlng(HOME))) == [other.user_id, third.user_id]
    place(app, third, offset(4, 0))  # within the jump allowance
    bands = {item["user_id"]: item["distance_km"] for item in nearby(live_api, me).data["list"]}
    assert bands == {other.user_id: 1, third.user_id: 4}
    assert live_api.post("/api/block/add", {"peerId": third.user_id}, user=me).status == 200
    assert listed(nearby(live_api, me)) == [other.user_id]
    assert live_api.post("/api/block/remove", {"peerId": third.user_id}, user=me).status == 200
    assert listed(nearby(live_api, me)) == [other.user_id, third.user_id]
