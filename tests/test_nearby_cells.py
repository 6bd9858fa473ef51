"""Nearby by grid cell: ring order, paging to the cap, cached cells kept right, and the
``seed-demo`` CLI's people visible to a running server on the embedded default."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.chat_support import hide_profile
from tests.helpers import ApiClient, HttpTransport, SignedInUser
from tests.test_nearby import HOME, latlng, listed, nearby, offset, place
from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.location import UserLocation
from wsgi_app.models.user import User
from wsgi_app.services.auth import tokens
from wsgi_app.services.location import nearby as nearby_service
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location import positions as location
from wsgi_app.services.location.grid import Cell, cell_centre, distance_band_km, distance_km, row_geometry
from wsgi_app.services.profile import cache as profile_cache


@pytest.fixture(params=[0, 300], ids=["uncached", "cached"])
def cell_cache(request: pytest.FixtureRequest, app: Flask) -> int:
    """Run the test without and with cells cached in Redis (also on the in-process stand-in)."""
    app.config["NEARBY_CELL_CACHE_SECS"] = request.param
    app.config["NEARBY_QUERY_LIMITS"] = [(100_000, 60)]
    return request.param


def test_rings_visit_every_cell_within_reach_once_in_band_order() -> None:
    centre = location.cell_of(*HOME)
    visited = [item for lo, hi in nearby_cells.stages(12) for item in nearby_cells.ring(centre, lo, hi)]
    keys = [(band, cell) for band, cell, _ in visited]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    origin = cell_centre(centre)
    expected = set()
    for row in range(centre.row - 16, centre.row + 17):
        middle = location.cell_of(row_geometry(row)[0], origin.lng).col  # columns shift from row to row
        for col in range(middle - 22, middle + 23):
            band = distance_band_km(distance_km(origin, cell_centre(Cell(row, col))))
            if band <= 12:
                expected.add((band, Cell(row, col)))
    assert set(keys) == expected
    assert visited[0] == (0, centre, 0.0)


def test_pages_cover_the_nearest_once_in_band_order_up_to_the_cap(
    live_api: ApiClient, app: Flask, auth, cell_cache: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nearby_service, "MAX_CANDIDATES", 9)
    me = auth.login()
    others = [auth.login() for _ in range(14)]
    for index, user in enumerate(others):  # two or three people share each cell
        place(app, user, offset(1.3 * (index // 3), 0.05 * (index % 3)))
    place(app, me, HOME)
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        reply = nearby(live_api, me, page=page, pageCount=2)
        assert reply.status == 200 and reply.data["total"] == 9
        seen += reply.data["list"]
        if not reply.data["has_next"]:
            break
        page += 1
    ids = [item["user_id"] for item in seen]
    assert len(ids) == len(set(ids)) == 9 and page == 5
    bands = [item["distance_km"] for item in seen]
    assert bands == sorted(bands)
    with app.app_context():
        me_at = location.current_position(me.user_id)
        assert me_at is not None
        for user in others:
            there = location.current_position(user.user_id)
            assert there is not None
            band = distance_band_km(distance_km(me_at, there))
            assert band >= max(bands) or user.user_id in ids  # nobody nearer was skipped
    assert nearby(live_api, me, page=6, pageCount=2).data["list"] == []


def test_a_mover_leaves_the_old_band_at_once(live_api: ApiClient, app: Flask, auth, cell_cache: int) -> None:
    me, mover, stayer = auth.login(), auth.login(), auth.login()
    place(app, mover, offset(3, 0))
    place(app, stayer, offset(3, 0.1))
    first = nearby(live_api, me, latlng=latlng(HOME)).data["list"]
    assert {item["user_id"]: item["distance_km"] for item in first} == {mover.user_id: 3, stayer.user_id: 3}
    place(app, mover, offset(7, 0))
    after = nearby(live_api, me).data["list"]
    assert [(item["user_id"], item["distance_km"]) for item in after] == [
        (stayer.user_id, 3),
        (mover.user_id, 7),
    ]


def test_a_cell_cached_before_a_change_never_shows_a_wrong_answer(
    live_api: ApiClient, app: Flask, auth, cell_cache: int
) -> None:
    """Rows changed behind the cache's back (a write racing a read): the page check
    finds every listed person who is no longer there, hidden or moved, and re-reads."""
    me, moved, hidden, kept = auth.login(), auth.login(), auth.login(), auth.login()
    for user in (moved, hidden, kept):
        place(app, user, offset(2, 0))
    assert sorted(listed(nearby(live_api, me, latlng=latlng(HOME)))) == sorted(
        u.user_id for u in (moved, hidden, kept)
    )
    far = location.snap_to_grid(*offset(9, 0))
    with app.app_context():  # the cells not invalidated yet: the card only, as the service says

        def move() -> None:
            row = db.session.get_one(UserLocation, moved.user_id)
            row.lat, row.lng = far.lat, far.lng
            profile_cache.invalidate_after_commit([moved.user_id])

        transactions.write(move)
    hide_profile(app, hidden)
    reply = nearby(live_api, me)
    assert [(i["user_id"], i["distance_km"]) for i in reply.data["list"]] == [
        (kept.user_id, 2),
        (moved.user_id, 9),
    ]
    assert reply.data["total"] == 2


def test_hiding_a_profile_drops_its_cached_cell(
    live_api: ApiClient, app: Flask, auth, cell_cache: int
) -> None:
    me, shy = auth.login(), auth.login()
    place(app, shy, offset(1, 0))
    assert listed(nearby(live_api, me, latlng=latlng(HOME))) == [shy.user_id]
    assert live_api.post("/api/user/update", {"authority": "0"}, user=shy).status == 200
    assert listed(nearby(live_api, me)) == []
    assert live_api.post("/api/user/update", {"authority": "1"}, user=shy).status == 200
    assert listed(nearby(live_api, me)) == [shy.user_id]


def test_people_seeded_by_the_cli_appear_in_a_running_server(
    app: Flask, creds, server_env: dict[str, str], spawn_server: Callable[..., Any]
) -> None:
    """The CLI is another process: on the embedded default its in-process Redis is
    not the server's, so nothing it could put there would reach the server."""
    server = spawn_server()
    with app.app_context():
        viewer = User(phone="13900000042")
        db.session.add(viewer)
        db.session.commit()
        token = tokens.issue_token(viewer.id).token
        db.session.commit()
        location.report_location(viewer.id, *HOME)
        me = SignedInUser(viewer.id, token, viewer.phone)
    api = ApiClient(HttpTransport(server.base_url), creds)
    before = nearby(api, me, radius=60)
    assert before.status == 200 and before.data["total"] == 0  # the server has looked once
    seeded = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi_app", "seed-demo", "--users", "60", "--seed", "5"],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    after = nearby(api, me, radius=60)
    assert after.status == 200 and after.data["total"] > 0, after.body
    with app.app_context():
        demo_ids = {
            u.id for u in db.session.execute(db.select(User).where(User.phone.like("100%"))).scalars()
        }
    assert set(listed(after)) <= demo_ids


def test_cell_ranking_pages_are_slices_of_the_full_ranking() -> None:
    """Counting cells (cached text or ids) and decoding only what a page needs gives exactly
    the slices of the plain ranking: every id once, in visiting order, excluded ids left out."""
    import random

    rng = random.Random(8)
    for trial in range(200):
        stage = [(band, Cell(band, col), float(band)) for band in range(3) for col in range(4)]
        cells = [sorted(rng.sample(range(1, 400), rng.randrange(0, 30))) for _ in stage]
        every = [user_id for members in cells for user_id in members]
        excluded = frozenset(rng.sample(every, min(len(every), rng.choice([0, 1, 3, 20])))) | {0}
        limit = rng.randrange(1, 120)
        values = [nearby_cells.encode(m) if trial % 2 else m for m in cells]
        ranking = nearby_cells.CellRanking(excluded, 5, limit)
        ranking.add(stage, values)
        plain = [
            (band, user_id, cell)
            for (band, cell, _), members in zip(stage, cells, strict=True)
            for user_id in members
            if user_id not in excluded
        ][:limit]
        assert ranking.total == len(plain)
        for start in range(0, limit + 3, 3):
            for count in (1, 2, 7):
                assert ranking.page(start, count) == plain[start : start + count]


def test_the_callers_own_move_and_blocks_count_at_their_next_query(
    live_api: ApiClient, app: Flask, auth, cell_cache: int
) -> None:
    """The caller's cell and exclusions may be cached (``nearby_viewer``): a move or a
    block, through the services, is seen by the very next query, total and all."""
    me, near_home, near_away = auth.login(), auth.login(), auth.login()
    away = offset(4, 0)  # a move the jump check allows at once
    place(app, near_home, offset(-1, 0))
    place(app, near_away, offset(5, 0))
    reply = nearby(live_api, me, latlng=latlng(HOME), radius=2)
    assert listed(reply) == [near_home.user_id] and reply.data["total"] == 1
    assert listed(nearby(live_api, me, radius=2)) == [near_home.user_id]  # state now cached
    place(app, me, away)  # through the service: the cached state stops counting
    assert listed(nearby(live_api, me, radius=2)) == [near_away.user_id]
    assert live_api.post("/api/block/add", {"peerId": near_away.user_id}, user=me).status == 200
    reply = nearby(live_api, me, radius=2)
    assert listed(reply) == [] and reply.data["total"] == 0
    assert live_api.post("/api/block/remove", {"peerId": near_away.user_id}, user=me).status == 200
    assert listed(nearby(live_api, me, radius=2)) == [near_away.user_id]
    assert listed(nearby(live_api, near_away, radius=2)) == [me.user_id]
    assert live_api.post("/api/block/add", {"peerId": me.user_id}, user=near_away).status == 200
    reply = nearby(live_api, me, radius=2)  # blocked by them: neither sees the other
    assert listed(reply) == [] and reply.data["total"] == 0


@pytest.mark.parametrize(
    ("members", "token", "listed_there"),
    [
        ("3,8,21", "3", True),
        ("3,8,21", "21", True),
        ("3,8,21", "2", False),
        ("13,31", "3", False),
        ("13,3", "3", True),
        ("7", "7", True),
        ("77", "7", False),
        ("1,12,121", "12", True),
    ],
)
def test_an_excluded_id_is_found_only_as_a_whole_item(members: str, token: str, listed_there: bool) -> None:
    assert nearby_cells._lists(members, token) is listed_there
