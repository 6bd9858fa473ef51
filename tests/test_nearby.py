"""``GET /api/user/nearby/list`` (native) and ``POST /api/location/report``, over real HTTP."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from tests.chat_support import block, hide_profile
from tests.helpers import ApiClient, Reply, SignedInUser
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.services.location import positions as location
from wsgi_app.timeutil import utcnow

HOME = (39.9042, 116.4074)  # Beijing
KM_PER_DEG = 111.32


def offset(km_north: float, km_east: float, origin: tuple[float, float] = HOME) -> tuple[float, float]:
    lat = origin[0] + km_north / KM_PER_DEG
    return lat, origin[1] + km_east / (KM_PER_DEG * math.cos(math.radians(origin[0])))


def latlng(point: tuple[float, float]) -> str:
    return f"{point[0]:.6f},{point[1]:.6f}"


def place(app: Flask, user: SignedInUser, point: tuple[float, float]) -> None:
    with app.app_context():
        location.report_location(user.user_id, *point)


def nearby(api: ApiClient, user: SignedInUser, **params: Any) -> Reply:
    return api.get("/api/user/nearby/list", params, user=user)


def listed(reply: Reply) -> list[int]:
    assert reply.status == 200, reply.body
    return [item["user_id"] for item in reply.data["list"]]


@pytest.fixture
def relaxed_limits(app: Flask) -> None:
    app.config["NEARBY_QUERY_LIMITS"] = [(100_000, 60)]
    app.config["LOCATION_CHANGE_LIMITS"] = [(100_000, 60)]


def test_unknown_position_gives_an_empty_unlocated_list(live_api: ApiClient, auth) -> None:
    reply = nearby(live_api, auth.login())
    assert reply.status == 200, reply.body
    assert reply.data == {"total": 0, "list": [], "has_next": False, "located": False}


def test_nearest_first_with_bands_within_the_radius(live_api: ApiClient, app: Flask, auth) -> None:
    me, same_cell, three_km, ten_km, thirty_km = (auth.login() for _ in range(5))
    place(app, same_cell, offset(0.05, 0.05))
    place(app, three_km, offset(3, 0))
    place(app, ten_km, offset(0, -10))
    place(app, thirty_km, offset(30, 0))
    reply = nearby(live_api, me, latlng=latlng(HOME))
    assert listed(reply) == [same_cell.user_id, three_km.user_id, ten_km.user_id]
    bands = [(item["distance_km"], item["distance"]) for item in reply.data["list"]]
    assert bands[0] == (0, "< 1 km")
    assert 2 <= bands[1][0] <= 4 and bands[1][1] == f"{bands[1][0]} km"
    assert 9 <= bands[2][0] <= 11
    assert reply.data["located"] is True and reply.data["total"] == 3
    wide = nearby(live_api, me, radius=50)  # the stored position is used without latlng
    assert listed(wide)[-1] == thirty_km.user_id
    assert set(reply.data["list"][0]) >= {"user_id", "nickname", "avatar", "gender", "birthday"}


def _keys_and_floats(value: Any) -> tuple[set[str], list[float]]:
    keys: set[str] = set()
    floats: list[float] = []
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(key)
            sub_keys, sub_floats = _keys_and_floats(item)
            keys |= sub_keys
            floats += sub_floats
    elif isinstance(value, list):
        for item in value:
            sub_keys, sub_floats = _keys_and_floats(item)
            keys |= sub_keys
            floats += sub_floats
    elif isinstance(value, float):
        floats.append(value)
    return keys, floats


def test_no_coordinates_or_exact_distances_are_returned(live_api: ApiClient, app: Flask, auth) -> None:
    me, other = auth.login(), auth.login()
    place(app, other, offset(1.7, 0.3))
    reply = nearby(live_api, me, latlng=latlng(HOME))
    keys, floats = _keys_and_floats(reply.body)
    assert not keys & {"lat", "lng", "latitude", "longitude", "latlng", "coordinates", "geo", "position"}
    assert floats == []
    assert listed(reply) == [other.user_id]


def test_never_myself_hidden_or_blocked_people(live_api: ApiClient, app: Flask, auth) -> None:
    me, visible, hidden, i_blocked, blocked_me = (auth.login() for _ in range(5))
    for index, user in enumerate((visible, hidden, i_blocked, blocked_me)):
        place(app, user, offset(index + 1, 0))
    hide_profile(app, hidden)
    block(app, me, i_blocked)
    block(app, blocked_me, me)
    assert listed(nearby(live_api, me, latlng=latlng(HOME))) == [visible.user_id]
    # And the other way round: they do not see me either.
    place(app, visible, offset(1, 0))
    assert me.user_id not in listed(nearby(live_api, i_blocked))
    assert me.user_id not in listed(nearby(live_api, blocked_me))
    assert me.user_id in listed(nearby(live_api, visible))


def test_stale_positions_are_not_listed(live_api: ApiClient, app: Flask, auth) -> None:
    me, fresh, stale = auth.login(), auth.login(), auth.login()
    place(app, fresh, offset(1, 0))
    place(app, stale, offset(2, 0))
    with app.app_context():
        db.session.get_one(UserLocation, stale.user_id).updated_at = utcnow() - timedelta(days=45)
        db.session.commit()
    assert listed(nearby(live_api, me, latlng=latlng(HOME))) == [fresh.user_id]


def test_pages_are_bounded_and_cover_everyone_once(live_api: ApiClient, app: Flask, auth) -> None:
    me = auth.login()
    others = [auth.login() for _ in range(5)]
    for index, user in enumerate(others):
        place(app, user, offset(1.0 + 2 * index, 0))
    place(app, me, HOME)
    pages = [nearby(live_api, me, page=page, pageCount=2) for page in (1, 2, 3)]
    assert [len(p.data["list"]) for p in pages] == [2, 2, 1]
    assert [p.data["has_next"] for p in pages] == [True, True, False]
    assert sum((listed(p) for p in pages), []) == [u.user_id for u in others]
    assert all(p.data["total"] == 5 for p in pages)
    too_many = nearby(live_api, me, pageCount=51)
    assert (too_many.status, too_many.code) == (400, 300)
    too_far = nearby(live_api, me, radius=101)
    assert (too_far.status, too_far.code) == (400, 300)


@pytest.mark.parametrize("bad", ["abc", "91,0", "0,181", "1,2,3", "39.9;116.4", "x" * 70])
def test_bad_latlng_is_502(live_api: ApiClient, auth, bad: str) -> None:
    reply = nearby(live_api, auth.login(), latlng=bad)
    assert (reply.status, reply.code) == (400, 502), reply.body


def test_impossible_jump_is_516_and_keeps_the_old_position(live_api: ApiClient, app: Flask, auth) -> None:
    me, near_home = auth.login(), auth.login()
    place(app, near_home, offset(2, 0))
    assert listed(nearby(live_api, me, latlng=latlng(HOME))) == [near_home.user_id]
    shanghai = "31.2304,121.4737"
    reply = nearby(live_api, me, latlng=shanghai)
    assert (reply.status, reply.code) == (400, 516)
    report = live_api.post("/api/location/report", {"latlng": shanghai}, user=me)
    assert (report.status, report.code) == (400, 516)
    assert listed(nearby(live_api, me)) == [near_home.user_id]  # still at home


def test_nearby_queries_are_rate_limited(live_api: ApiClient, app: Flask, auth) -> None:
    app.config["NEARBY_QUERY_LIMITS"] = [(3, 60)]
    me = auth.login()
    assert [nearby(live_api, me, latlng=latlng(HOME)).status for _ in range(3)] == [200] * 3
    reply = nearby(live_api, me)
    assert (reply.status, reply.code) == (429, 429)
    assert int(reply.headers["Retry-After"]) > 0


def test_location_changes_are_rate_limited_but_same_cell_reports_are_free(
    live_api: ApiClient, app: Flask, auth
) -> None:
    app.config["LOCATION_CHANGE_LIMITS"] = [(2, 3600)]
    me = auth.login()
    for _ in range(4):  # the same cell again and again costs nothing
        assert live_api.post("/api/location/report", {"latlng": latlng(HOME)}, user=me).status == 200
    assert live_api.post("/api/location/report", {"latlng": latlng(offset(2, 0))}, user=me).status == 200
    reply = live_api.post("/api/location/report", {"latlng": latlng(offset(4, 0))}, user=me)
    assert (reply.status, reply.code) == (429, 429)


def test_reported_location_is_used_and_another_users_token_refused(
    live_api: ApiClient, app: Flask, auth
) -> None:
    me, other = auth.login(), auth.login()
    place(app, other, offset(0, 1.5))
    reply = live_api.post("/api/location/report", {"latlng": latlng(HOME)}, user=me)
    assert reply.status == 200 and reply.data == {"stored": True}
    assert listed(nearby(live_api, me)) == [other.user_id]
    forged = SignedInUser(me.user_id, other.token, me.phone)
    assert (nearby(live_api, forged).status, nearby(live_api, forged).code) == (401, 504)
    bad = live_api.post("/api/location/report", {"latlng": latlng(HOME)}, user=forged)
    assert (bad.status, bad.code) == (401, 504)


def test_nothing_is_lost_when_redis_loses_its_data(live_api: ApiClient, app: Flask, auth) -> None:
    app.config["NEARBY_CELL_CACHE_SECS"] = 300  # cache cells even on the in-process stand-in
    me, other = auth.login(), auth.login()
    place(app, other, offset(1, 1))
    place(app, me, HOME)
    assert listed(nearby(live_api, me)) == [other.user_id]  # cells now cached
    with app.app_context():
        redis_client().flushdb()  # Redis restarted without its data
    # The request in flight when the loss is noticed is refused once (the nonce store's epoch,
    # auth.core); the client signs again.
    assert nearby(live_api, me).code == 508
    assert listed(nearby(live_api, me)) == [other.user_id]


def test_trilateration_attack_cannot_locate_a_victim_within_its_cell(
    live_api: ApiClient, app: Flask, auth, relaxed_limits
) -> None:
    """The attacker walks its reported position over a fine grid around two victims
    who sit ~1.1 km apart inside one grid cell, recording every answer. Every answer
    is the same for both victims: no amount of probing tells their positions apart,
    so neither can be located closer than about 1 km."""
    cell = location.snap_to_grid(*HOME)
    victim_a_at = offset(-0.4, -0.4, (cell.lat, cell.lng))
    victim_b_at = offset(0.4, 0.4, (cell.lat, cell.lng))
    assert location.snap_to_grid(*victim_a_at) == location.snap_to_grid(*victim_b_at) == cell
    separation = location.distance_km(location.GridPoint(*victim_a_at), location.GridPoint(*victim_b_at))
    assert separation > 1.0
    attacker, victim_a, victim_b = auth.login(), auth.login(), auth.login()
    place(app, victim_a, victim_a_at)
    place(app, victim_b, victim_b_at)

    answers: list[tuple[tuple[float, float], dict[int, int]]] = []
    steps = [k * 0.4 for k in range(-6, 7)]  # 400 m steps over +-2.4 km
    for row, north in enumerate(steps):
        for east in steps if row % 2 == 0 else reversed(steps):  # walk, never jump
            probe = offset(north, east, (cell.lat, cell.lng))
            reply = nearby(live_api, attacker, latlng=latlng(probe))
            assert reply.status == 200, reply.body
            bands = {item["user_id"]: item["distance_km"] for item in reply.data["list"]}
            answers.append((probe, bands))

    assert len(answers) == len(steps) ** 2
    for probe, bands in answers:
        assert bands[victim_a.user_id] == bands[victim_b.user_id], probe
    seen_bands = {bands[victim_a.user_id] for _, bands in answers}
    assert 0 in seen_bands and max(seen_bands) >= 2  # the probing was informative at all

    # The attacker's best guess (mean of the probes answering "< 1 km") is one point,
    # the same for both victims, so it misses at least one of them by half their separation.
    closest = [probe for probe, bands in answers if bands[victim_a.user_id] == 0]
    guess = location.GridPoint(
        sum(p[0] for p in closest) / len(closest), sum(p[1] for p in closest) / len(closest)
    )
    misses = [location.distance_km(guess, location.GridPoint(*at)) for at in (victim_a_at, victim_b_at)]
    assert max(misses) >= separation / 2 > 0.5
