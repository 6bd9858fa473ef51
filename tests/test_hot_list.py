"""The hot list: ranking, exclusions, pagination, and the Redis cache staying truthful."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.social_helpers import add_visit, block, set_user_fields
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.user import AUTHORITY_CONTACTS, AUTHORITY_HIDDEN, User
from wsgi_app.services.profile import hot_list
from wsgi_app.timeutil import utcnow


def invalidate(app) -> None:
    with app.app_context():
        hot_list.invalidate()


def hot_ids(api, user, **params) -> list[int]:
    reply = api.get("/api/user/hot/list", {"pageCount": 50, **params}, user=user)
    assert reply.status == 200, reply.body
    return [item["user_id"] for item in reply.data["list"]]


@pytest.fixture
def crowd(app, auth):
    """A viewer, three stars with 3/2/1 recent visitors, and a fan base to visit them."""
    viewer = auth.login()
    stars = [auth.login() for _ in range(3)]
    fans = [auth.login() for _ in range(3)]
    now = utcnow()
    for count, star in zip((3, 2, 1), stars, strict=True):
        for fan in fans[:count]:
            add_visit(app, fan.user_id, star.user_id, now - timedelta(hours=1), count=5)
    return viewer, stars, fans


def test_ranked_by_distinct_recent_visitors(app, api, crowd):
    viewer, stars, fans = crowd
    ids = hot_ids(api, viewer)
    assert ids[:3] == [s.user_id for s in stars]
    # Unvisited people follow, newest first; never the viewer.
    assert viewer.user_id not in ids
    assert ids[3:] == sorted((f.user_id for f in fans), reverse=True)


def test_old_visits_do_not_count(app, api, auth, crowd):
    viewer, stars, fans = crowd
    has_been = auth.login()
    old = utcnow() - timedelta(days=app.config["HOT_LIST_WINDOW_DAYS"] + 1)
    for fan in (*fans, viewer):
        add_visit(app, fan.user_id, has_been.user_id, old)
    invalidate(app)
    ids = hot_ids(api, viewer)
    assert ids.index(has_been.user_id) > ids.index(stars[2].user_id)


def test_ties_go_to_the_most_recently_visited(app, api, auth):
    viewer, a, b, fan = auth.login(), auth.login(), auth.login(), auth.login()
    add_visit(app, fan.user_id, a.user_id, utcnow() - timedelta(hours=1))
    add_visit(app, fan.user_id, b.user_id, utcnow() - timedelta(hours=3))
    assert hot_ids(api, viewer)[:2] == [a.user_id, b.user_id]


def test_profiles_as_in_show(api, crowd):
    viewer, stars, _ = crowd
    item = api.get("/api/user/hot/list", user=viewer).data["list"][0]
    shown = api.get("/api/user/show", {"peerId": stars[0].user_id}, user=viewer).data
    assert item == shown and "phone" not in item


@pytest.mark.parametrize("authority", [AUTHORITY_HIDDEN, AUTHORITY_CONTACTS])
def test_not_everyone_visible_profiles_are_never_listed(app, api, crowd, authority):
    viewer, stars, _ = crowd
    set_user_fields(app, stars[0].user_id, authority=authority)
    invalidate(app)
    assert stars[0].user_id not in hot_ids(api, viewer)


@pytest.mark.parametrize("direction", ["viewer_blocked", "blocked_viewer"])
def test_blocked_either_way_never_listed(app, api, crowd, direction):
    viewer, stars, fans = crowd
    assert stars[1].user_id in hot_ids(api, viewer)  # ranking now cached
    if direction == "viewer_blocked":
        block(app, viewer.user_id, stars[1].user_id)
    else:
        block(app, stars[1].user_id, viewer.user_id)
    assert stars[1].user_id not in hot_ids(api, viewer)
    assert stars[1].user_id in hot_ids(api, fans[0])  # only the pair is affected


def test_pagination_and_has_next(api, crowd):
    viewer, stars, fans = crowd
    everyone = hot_ids(api, viewer)
    assert len(everyone) == 6
    pages = [api.get("/api/user/hot/list", {"page": p, "pageCount": 4}, user=viewer).data for p in (1, 2, 3)]
    assert [item["user_id"] for item in pages[0]["list"] + pages[1]["list"]] == everyone
    assert [page["has_next"] for page in pages] == [True, False, False]
    assert pages[2]["list"] == [] and {page["total"] for page in pages} == {6}
    default = api.get("/api/user/hot/list", user=viewer).data
    assert len(default["list"]) == 6 and default["total"] == 6 and default["has_next"] is False


@pytest.mark.parametrize("params", [{"pageCount": 51}, {"pageCount": 0}, {"page": 0}, {"page": "two"}])
def test_page_parameters_are_bounded(api, user, params):
    reply = api.get("/api/user/hot/list", params, user=user)
    assert reply.status == 400 and reply.code == 300


def test_ranking_is_cached_then_refreshed(app, api, auth, crowd, monkeypatch):
    viewer, stars, fans = crowd
    clock = [1_000_000.0]
    monkeypatch.setattr(hot_list, "epoch_seconds", lambda: clock[0])
    ttl = app.config["HOT_LIST_CACHE_SECS"]
    before = hot_ids(api, viewer)
    with app.app_context():
        generation = redis_client().get(hot_list.GENERATION_KEY) or "0"
        key = hot_list.RANKING_KEY.format(generation=generation)
        assert 0 < redis_client().ttl(key) <= 2 * ttl
    # A sudden star: while fresh, the cached ranking is served...
    for fan in (*fans[1:], *stars[:2], viewer):
        add_visit(app, fan.user_id, stars[2].user_id)
    clock[0] += ttl - 1
    assert hot_ids(api, viewer) == before
    # ...once stale, while another worker holds the refresh lock, the stale copy is served...
    clock[0] += 2
    with app.app_context():
        redis_client().set(f"{key}:refreshing", "1", ex=30)
    assert hot_ids(api, viewer) == before
    # ...and the next caller that gets the lock recomputes.
    with app.app_context():
        redis_client().delete(f"{key}:refreshing")
    assert hot_ids(api, viewer)[0] == stars[2].user_id
    with app.app_context():
        assert not redis_client().exists(f"{key}:refreshing")


def test_expired_entry_is_recomputed(app, api, crowd):
    viewer, stars, fans = crowd
    before = hot_ids(api, viewer)
    for fan in (*fans[1:], *stars[:2], viewer):
        add_visit(app, fan.user_id, stars[2].user_id)
    assert hot_ids(api, viewer) == before
    with app.app_context():
        generation = redis_client().get(hot_list.GENERATION_KEY) or "0"
        redis_client().delete(hot_list.RANKING_KEY.format(generation=generation))  # what the TTL does
    assert hot_ids(api, viewer)[0] == stars[2].user_id


def test_hiding_makes_you_vanish_at_once_and_showing_again_returns_you(app, api, auth, crowd):
    viewer, stars, _ = crowd
    assert stars[0].user_id in hot_ids(api, viewer)
    hide = api.post("/api/user/update", {"authority": AUTHORITY_HIDDEN}, user=stars[0])
    assert hide.status == 200
    assert stars[0].user_id not in hot_ids(api, viewer)
    api.post("/api/user/update", {"authority": 1}, user=stars[0])
    assert hot_ids(api, viewer)[0] == stars[0].user_id


def test_hidden_even_without_invalidation(app, api, crowd):
    """Someone hidden behind the API's back (or by another code path) still vanishes at once."""
    viewer, stars, _ = crowd
    assert stars[0].user_id in hot_ids(api, viewer)
    set_user_fields(app, stars[0].user_id, authority=AUTHORITY_HIDDEN)
    assert stars[0].user_id not in hot_ids(api, viewer)


def test_deleted_users_vanish_at_once(app, api, crowd):
    viewer, stars, _ = crowd
    assert stars[0].user_id in hot_ids(api, viewer)
    with app.app_context():
        db.session.execute(db.delete(User).where(User.id == stars[0].user_id))
        db.session.commit()
    ids = hot_ids(api, viewer)
    assert stars[0].user_id not in ids and ids[0] == stars[1].user_id
