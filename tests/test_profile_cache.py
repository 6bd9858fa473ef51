"""The profile cache: a cached own profile costs no query, and no change is ever served stale."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from tests.social_helpers import image_bytes, set_user_fields
from wsgi_app import transactions
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.user import User
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.services.profile import profiles


@contextmanager
def counted_statements(app) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def nickname(api, user) -> str:
    reply = api.get("/api/user/show", user=user)
    assert reply.status == 200, reply
    return reply.data["nickname"]


def test_cached_own_profile_makes_no_query(app, api, user):
    first = api.get("/api/user/show", user=user).data
    with counted_statements(app) as seen:
        again = api.get("/api/user/show", user=user).data
    assert again == first
    assert [s for s in seen if "users" in s] == []


def test_update_is_seen_at_once(api, user):
    nickname(api, user)
    api.post("/api/user/update", {"nickname": "fresh"}, user=user)
    assert nickname(api, user) == "fresh"


def test_an_update_drops_only_its_users_entry(app, api, alice, bob):
    nickname(api, alice)
    nickname(api, bob)
    with app.app_context():
        epoch_before = redis_client().get(profile_cache.EPOCH_KEY)
    assert api.post("/api/user/update", {"nickname": "alice2", "height": 170}, user=alice).status == 200
    with app.app_context():
        cache = redis_client()
        assert cache.get(profile_cache.EPOCH_KEY) == epoch_before  # not every entry voided
        assert cache.get(profile_cache.row_key(alice.user_id)) is None
        assert cache.get(profile_cache.row_key(bob.user_id)) is not None
    with counted_statements(app) as seen:
        nickname(api, bob)
    assert [s for s in seen if "users" in s] == []
    assert nickname(api, alice) == "alice2"


def test_a_change_outside_the_services_is_seen_once_it_says_what_it_changed(app, api, user):
    nickname(api, user)
    with app.app_context():

        def rename() -> None:
            db.session.get_one(User, user.user_id).nickname = "orm"
            profile_cache.invalidate_after_commit([user.user_id])

        transactions.write(rename)
    assert nickname(api, user) == "orm"
    set_user_fields(app, user.user_id, nickname="core")
    assert nickname(api, user) == "core"
    with app.app_context():  # users unknown: every cached row voided

        def rename_all() -> None:
            db.session.execute(db.text("UPDATE users SET nickname = 'raw'"))
            profile_cache.invalidate_after_commit([profile_cache.ALL_USERS])

        transactions.write(rename_all)
    assert nickname(api, user) == "raw"


def test_nothing_reads_statements_to_guess_what_changed(app, api, user):
    """Invalidation is explicit: a write that does not say what it changed drops nothing (so a
    service that forgets to say it is caught by its own stale-read test, never papered over)."""
    nickname(api, user)
    with app.app_context():
        db.session.execute(db.text("UPDATE users SET nickname = 'silent'"))
        db.session.commit()
        assert redis_client().get(profile_cache.row_key(user.user_id)) is not None


def test_rolled_back_change_invalidates_nothing_and_is_not_seen(app, api, user):
    before = nickname(api, user)
    with app.app_context():
        db.session.get_one(User, user.user_id).nickname = "never"
        db.session.flush()
        db.session.rollback()
    assert nickname(api, user) == before


def test_a_fill_racing_a_change_is_refused(app, api, user, monkeypatch):
    """The database read saw the old row, the change committed and invalidated before the
    fill: the fill must not store the old row."""
    real_load = profiles.load_profile_row

    def load_then_change(user_id: int):
        row = real_load(user_id)
        profile_cache.invalidate([user_id])  # what the concurrent writer's commit does
        return row

    monkeypatch.setattr(profile_cache, "load_profile_row", load_then_change)
    nickname(api, user)
    with app.app_context():
        assert redis_client().get(profile_cache.row_key(user.user_id)) is None


def test_an_avatar_set_is_seen_at_once(api, user):
    """Each service that changes a cached column says so (``invalidate_after_commit``): the cached
    own profile shows the change at the next read."""
    from tests.test_photos import upload

    photo = upload(api, user, image_bytes()).data
    assert api.get("/api/user/show", user=user).data["avatar"] is None  # cached
    assert api.post("/api/photo/avatar", {"photoId": photo["photo_id"]}, user=user).status == 200
    assert api.get("/api/user/show", user=user).data["avatar"] == photo["url"]
