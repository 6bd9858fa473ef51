"""Location service: grid snapping, bands, storage, forgetting, and the cells nearby reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from tests.helpers import SignedInUser
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.location import UserLocation
from wsgi_app.models.user import AUTHORITY_HIDDEN, User
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location import positions as location
from wsgi_app.services.location.positions import GridPoint
from wsgi_app.timeutil import utcnow


def test_snapping_is_deterministic_and_keeps_points_within_a_cell() -> None:
    for lat, lng in [(39.9042, 116.4074), (-33.8688, 151.2093), (0.0, -0.0001), (64.1466, -21.9426)]:
        cell = location.snap_to_grid(lat, lng)
        assert cell == location.snap_to_grid(cell.lat, cell.lng)  # a centre snaps to itself
        assert location.distance_km(cell, GridPoint(lat, lng)) < 0.8  # within half a diagonal
        assert (cell.lat, cell.lng) != (lat, lng)


def test_nearby_points_share_a_cell_and_far_points_do_not() -> None:
    base = location.snap_to_grid(39.9042, 116.4074)
    # 0.0005 deg ~ 55 m: almost always the same cell; 0.05 deg ~ 5 km: never.
    assert location.snap_to_grid(base.lat + 0.0005, base.lng + 0.0005) == base
    far = location.snap_to_grid(base.lat + 0.05, base.lng)
    assert far != base
    assert location.distance_band_km(location.distance_km(base, far)) in (5, 6)


@pytest.mark.parametrize("raw", ["", "abc", "91,0", "0,181", "1;2", "1,2,3", "nan,1", "1e5,2"])
def test_bad_latlng_is_refused_with_502(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        location.parse_latlng(raw)
    assert info.value.spec is LATLNG_INVALID


def test_good_latlng_parses() -> None:
    assert location.parse_latlng(" 39.9042, 116.4074 ") == (39.9042, 116.4074)
    assert location.parse_latlng("-33,-70") == (-33.0, -70.0)


def test_bands() -> None:
    assert location.distance_label(location.distance_band_km(0.0)) == "< 1 km"
    assert location.distance_label(location.distance_band_km(0.99)) == "1 km"
    assert location.distance_label(location.distance_band_km(7.4)) == "7 km"


def test_report_stores_only_the_snapped_point(app: Flask, user: SignedInUser) -> None:
    with app.app_context():
        point = location.report_location(user.user_id, 39.9042, 116.4074)
        row = db.session.get_one(UserLocation, user.user_id)
        assert (row.lat, row.lng) == (point.lat, point.lng) != (39.9042, 116.4074)
        cell = location.cell_of(39.9042, 116.4074)
        assert location.cell_centre(cell) == point
        assert nearby_cells.load_cells([cell]) == {cell: [user.user_id]}


def test_impossible_jump_is_rejected(app: Flask, user: SignedInUser) -> None:
    with app.app_context():
        location.report_location(user.user_id, 39.9042, 116.4074)  # Beijing
        with pytest.raises(ApiError) as info:
            location.report_location(user.user_id, 31.2304, 121.4737)  # Shanghai, a second later
        assert info.value.spec is LOCATION_REJECTED
        row = db.session.get_one(UserLocation, user.user_id)
        assert location.distance_km(GridPoint(row.lat, row.lng), GridPoint(39.9042, 116.4074)) < 1


def test_forget_location_removes_row_and_cached_cell(app: Flask, auth) -> None:
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    alice, bob = auth.login(), auth.login()
    with app.app_context():
        location.report_location(alice.user_id, 39.9, 116.4)
        location.report_location(bob.user_id, 39.9001, 116.4001)
        cell = location.cell_of(39.9, 116.4)
        assert nearby_cells.load_cells([cell])[cell] == sorted([alice.user_id, bob.user_id])
        location.forget_location(alice.user_id)
        db.session.commit()
        assert db.session.get(UserLocation, alice.user_id) is None
        assert redis_client().get(nearby_cells.cell_key(cell)) is None
        assert nearby_cells.load_cells([cell])[cell] == [bob.user_id]


def test_a_mover_leaves_the_cached_old_cell_at_once(app: Flask, auth) -> None:
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    mover = auth.login()
    old, new = location.cell_of(39.9, 116.4), location.cell_of(39.92, 116.4)
    with app.app_context():
        location.report_location(mover.user_id, 39.9, 116.4)
        assert nearby_cells.load_cells([old, new]) == {old: [mover.user_id], new: []}
        assert redis_client().get(nearby_cells.cell_key(old)) == str(mover.user_id)
        location.report_location(mover.user_id, 39.92, 116.4)
        # edited in place, not dropped: no page rebuilds either cell from the database
        assert redis_client().get(nearby_cells.cell_key(old)) == ""
        assert redis_client().get(nearby_cells.cell_key(new)) == str(mover.user_id)
        assert 0 < redis_client().ttl(nearby_cells.cell_key(new)) <= 300  # expiry kept
        assert nearby_cells.load_cells([old, new]) == {old: [], new: [mover.user_id]}


def test_moves_edit_cached_cells_in_place_in_id_order(app: Flask, auth) -> None:
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    low, middle, high, mover = auth.login(), auth.login(), auth.login(), auth.login()
    here, there = location.cell_of(39.9, 116.4), location.cell_of(39.92, 116.4)
    with app.app_context():
        for person in (low, middle, high):
            location.report_location(person.user_id, 39.9, 116.4)
        location.report_location(mover.user_id, 39.92, 116.4)
        nearby_cells.load_cells([here, there])
        key = nearby_cells.cell_key(here)
        for person in (low, middle, high):  # the first, middle and last away and back (~2 km)
            location.report_location(person.user_id, 39.92, 116.4)
            assert str(person.user_id) not in str(redis_client().get(key)).split(",")
            location.report_location(person.user_id, 39.9, 116.4)
            assert redis_client().get(key) == ",".join(str(p.user_id) for p in (low, middle, high))
        location.report_location(mover.user_id, 39.9, 116.4)
        everyone = sorted(p.user_id for p in (low, middle, high, mover))
        assert redis_client().get(key) == ",".join(map(str, everyone))
        assert redis_client().get(nearby_cells.cell_key(there)) == ""
        assert nearby_cells.load_cells([here, there]) == {here: everyone, there: []}  # as the rows say


def test_a_hidden_mover_never_enters_a_cached_cell(app: Flask, auth) -> None:
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    hidden, shown = auth.login(), auth.login()
    old, new = location.cell_of(39.9, 116.4), location.cell_of(39.92, 116.4)
    with app.app_context():
        location.report_location(hidden.user_id, 39.9, 116.4)
        location.report_location(shown.user_id, 39.92, 116.4)
        db.session.get_one(User, hidden.user_id).authority = AUTHORITY_HIDDEN
        db.session.commit()
        nearby_cells.load_cells([old, new])
        location.report_location(hidden.user_id, 39.92, 116.4)
        assert redis_client().get(nearby_cells.cell_key(new)) == str(shown.user_id)
        assert redis_client().get(nearby_cells.cell_key(old)) == ""


def test_cells_hold_only_fresh_people_visible_to_everyone(app: Flask, auth) -> None:
    shown, hidden, stale = auth.login(), auth.login(), auth.login()
    cell = location.cell_of(39.9, 116.4)
    with app.app_context():
        for user in (shown, hidden, stale):
            location.report_location(user.user_id, 39.9, 116.4)
        db.session.get_one(User, hidden.user_id).authority = AUTHORITY_HIDDEN
        db.session.get_one(UserLocation, stale.user_id).updated_at = utcnow() - timedelta(days=31)
        db.session.commit()
        assert nearby_cells.load_cells([cell]) == {cell: [shown.user_id]}


def test_a_stale_person_reporting_the_same_cell_again_is_back_at_once(app: Flask, auth) -> None:
    app.config["NEARBY_CELL_CACHE_SECS"] = 300
    sleeper = auth.login()
    cell = location.cell_of(39.9, 116.4)
    with app.app_context():
        location.report_location(sleeper.user_id, 39.9, 116.4)
        db.session.get_one(UserLocation, sleeper.user_id).updated_at = utcnow() - timedelta(days=40)
        db.session.commit()
        assert nearby_cells.load_cells([cell]) == {cell: []}  # cached without them
        location.report_location(sleeper.user_id, 39.9001, 116.4001)  # the same cell, fresh again
        assert redis_client().get(nearby_cells.cell_key(cell)) == str(sleeper.user_id)  # in place
        assert nearby_cells.load_cells([cell]) == {cell: [sleeper.user_id]}
