"""Who viewed me: counts for everyone, the folded list and mark-read for VIP only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.chat_support import send_text
from tests.social_helpers import add_visit, block, make_vip, set_user_fields
from wsgi_app.extensions import db
from wsgi_app.models.user import AUTHORITY_CONTACTS, AUTHORITY_HIDDEN
from wsgi_app.services.vip.status import is_vip
from wsgi_app.timeutil import utcnow


def view(api, visitor, owner):
    reply = api.get("/api/user/show", {"peerId": owner.user_id}, user=visitor)
    assert reply.status == 200, reply.body


def test_summary_for_everyone(api, auth):
    owner, a, b = auth.login(), auth.login(), auth.login()
    assert api.get("/api/visitor/summary", user=owner).data == {
        "total_visitors": 0,
        "total_visits": 0,
        "new_visitors": 0,
    }
    view(api, a, owner)
    view(api, a, owner)
    view(api, b, owner)
    view(api, owner, a)  # visits made by the owner do not count for the owner
    reply = api.get("/api/visitor/summary", user=owner)
    assert reply.status == 200
    assert reply.data == {"total_visitors": 2, "total_visits": 3, "new_visitors": 2}


def test_list_requires_vip(app, api, auth):
    owner, a = auth.login(), auth.login()
    view(api, a, owner)
    for path, method in (("/api/visitor/list", api.get), ("/api/visitor/read", api.post)):
        reply = method(path, user=owner)
        assert reply.status == 403 and reply.code == 513, path
    set_user_fields(app, owner.user_id, vip_expires_at=utcnow() - timedelta(seconds=1))  # expired
    assert api.get("/api/visitor/list", user=owner).code == 513
    assert api.get("/api/visitor/summary", user=owner).data["new_visitors"] == 1  # read refused: still new


def test_list_folded_newest_first(app, api, auth):
    owner, early, late = auth.login(), auth.login(), auth.login()
    make_vip(app, owner.user_id)
    now = utcnow()
    add_visit(app, early.user_id, owner.user_id, now - timedelta(hours=5), count=4)
    add_visit(app, late.user_id, owner.user_id, now - timedelta(hours=1))
    reply = api.get("/api/visitor/list", user=owner)
    assert reply.status == 200, reply.body
    entries = reply.data["list"]
    assert [e["visitor"]["user_id"] for e in entries] == [late.user_id, early.user_id]
    assert [e["visit_count"] for e in entries] == [1, 4]
    assert all(e["is_new"] for e in entries) and "phone" not in entries[0]["visitor"]
    view(api, early, owner)  # now the latest: moves to the top, count folded
    entries = api.get("/api/visitor/list", user=owner).data["list"]
    assert [(e["visitor"]["user_id"], e["visit_count"]) for e in entries] == [
        (early.user_id, 5),
        (late.user_id, 1),
    ]
    assert entries[0]["last_visited_at"] > entries[1]["last_visited_at"]


def test_list_pagination(app, api, auth):
    owner = auth.login()
    make_vip(app, owner.user_id)
    visitors = [auth.login() for _ in range(5)]
    for age, visitor in enumerate(visitors):
        add_visit(app, visitor.user_id, owner.user_id, utcnow() - timedelta(minutes=age))
    first = api.get("/api/visitor/list", {"pageCount": 2}, user=owner).data
    third = api.get("/api/visitor/list", {"page": 3, "pageCount": 2}, user=owner).data
    assert [e["visitor"]["user_id"] for e in first["list"]] == [v.user_id for v in visitors[:2]]
    assert (first["total"], first["has_next"]) == (5, True)
    assert [e["visitor"]["user_id"] for e in third["list"]] == [visitors[4].user_id]
    assert third["has_next"] is False
    assert api.get("/api/visitor/list", {"pageCount": 51}, user=owner).code == 300


@pytest.mark.parametrize("direction", ["owner_blocked", "visitor_blocked"])
def test_blocked_visitors_excluded_either_way(app, api, auth, direction):
    owner, friend, foe = auth.login(), auth.login(), auth.login()
    make_vip(app, owner.user_id)
    add_visit(app, friend.user_id, owner.user_id)
    add_visit(app, foe.user_id, owner.user_id)
    if direction == "owner_blocked":
        block(app, owner.user_id, foe.user_id)
    else:
        block(app, foe.user_id, owner.user_id)
    listed = api.get("/api/visitor/list", user=owner).data
    assert [e["visitor"]["user_id"] for e in listed["list"]] == [friend.user_id] and listed["total"] == 1
    assert api.get("/api/visitor/summary", user=owner).data["total_visitors"] == 1


def test_hidden_visitors_stay_hidden(app, api, auth):
    owner, hidden, contacts_only, chatting = auth.login(), auth.login(), auth.login(), auth.login()
    make_vip(app, owner.user_id)
    for visitor in (hidden, contacts_only, chatting):
        add_visit(app, visitor.user_id, owner.user_id)
    set_user_fields(app, hidden.user_id, authority=AUTHORITY_HIDDEN)
    for someone in (contacts_only, chatting):
        set_user_fields(app, someone.user_id, authority=AUTHORITY_CONTACTS)
    assert send_text(api, chatting, owner, "hi").status == 200  # chatting writes to the owner
    assert send_text(api, owner, contacts_only, "hi").status == 200  # not the other way round
    listed = api.get("/api/visitor/list", user=owner).data["list"]
    assert [e["visitor"]["user_id"] for e in listed] == [chatting.user_id]


def test_mark_read(app, api, auth):
    owner, other, a, b = auth.login(), auth.login(), auth.login(), auth.login()
    make_vip(app, owner.user_id)
    view(api, a, owner)
    view(api, b, owner)
    view(api, a, other)
    reply = api.post("/api/visitor/read", user=owner)
    assert reply.status == 200 and reply.data == {"marked": 2}
    assert api.get("/api/visitor/summary", user=owner).data["new_visitors"] == 0
    assert not any(e["is_new"] for e in api.get("/api/visitor/list", user=owner).data["list"])
    assert api.get("/api/visitor/summary", user=other).data["new_visitors"] == 1  # others' untouched
    view(api, b, owner)  # a new visit makes b new again
    assert api.get("/api/visitor/summary", user=owner).data["new_visitors"] == 1
    assert api.post("/api/visitor/read", user=owner).data == {"marked": 1}


def test_visitor_list_is_only_ever_the_callers(app, api, auth):
    owner, vip, a = auth.login(), auth.login(), auth.login()
    make_vip(app, vip.user_id)
    view(api, a, owner)
    listed = api.get("/api/visitor/list", {"userId": vip.user_id, "peerId": owner.user_id}, user=vip).data
    assert listed["total"] == 0
    assert api.post("/api/visitor/read", {"peerId": owner.user_id}, user=vip).data == {"marked": 0}
    assert api.get("/api/visitor/summary", user=owner).data["new_visitors"] == 1
    reply = api.get("/api/visitor/list", {"userId": owner.user_id, "token": vip.token})
    assert reply.status == 401 and reply.code == 504


def test_is_vip(app, user):
    from wsgi_app.models.user import User

    now = utcnow()
    assert is_vip(User(vip_expires_at=None), now) is False
    assert is_vip(User(vip_expires_at=now + timedelta(seconds=1)), now) is True
    assert is_vip(User(vip_expires_at=now), now) is False


def test_parallel_first_visits_fold_into_one_row(app, auth):
    """Many workers recording the same new pair at once: one row, every visit counted, no error."""
    import threading

    from tests.social_helpers import visit_rows
    from wsgi_app.services.profile.visits import record_visit

    visitor, owner = auth.login(), auth.login()
    workers, failures = 8, []
    barrier = threading.Barrier(workers)

    def visit() -> None:
        with app.app_context():
            try:
                barrier.wait(5)
                record_visit(visitor.user_id, owner.user_id)
                db.session.commit()
            except Exception as err:  # collected, asserted below
                failures.append(err)

    threads = [threading.Thread(target=visit) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    rows = visit_rows(app, owner.user_id)
    assert len(rows) == 1 and rows[0].visit_count == workers
