"""Labels: catalogue paging, the seed command, replacing and reading a profile's set."""

from __future__ import annotations

import pytest

from tests.social_helpers import block, set_user_fields
from wsgi_app.extensions import db
from wsgi_app.models.social import Label, UserLabel
from wsgi_app.models.user import AUTHORITY_HIDDEN
from wsgi_app.services.profile import labels as label_service

CATALOGUE_SIZE = sum(len(names) for names in label_service.CATALOGUE.values())


@pytest.fixture
def seeded(app) -> list[int]:
    result = app.test_cli_runner().invoke(args=["labels", "seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        return list(db.session.execute(db.select(Label.id).order_by(Label.id)).scalars())


def test_seed_is_idempotent(app, seeded):
    assert len(seeded) == CATALOGUE_SIZE
    again = app.test_cli_runner().invoke(args=["labels", "seed"])
    assert again.exit_code == 0 and "0 labels added" in again.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == CATALOGUE_SIZE


def test_catalogue_pages(api, user, seeded):
    first = api.get("/api/label/list", {"pageCount": 20}, user=user)
    assert first.status == 200 and first.data["total"] == CATALOGUE_SIZE and first.data["has_next"] is True
    assert [item["label_id"] for item in first.data["list"]] == seeded[:20]
    last_page = (CATALOGUE_SIZE + 19) // 20
    last = api.get("/api/label/list", {"page": last_page, "pageCount": 20}, user=user)
    assert [item["label_id"] for item in last.data["list"]] == seeded[(last_page - 1) * 20 :]
    assert last.data["has_next"] is False
    default = api.get("/api/label/list", user=user)
    assert len(default.data["list"]) == 10


def test_catalogue_by_category(api, user, seeded):
    reply = api.get("/api/label/list", {"category": "personality", "pageCount": 50}, user=user)
    assert reply.data["total"] == len(label_service.CATALOGUE["personality"])
    assert {item["category"] for item in reply.data["list"]} == {"personality"}
    assert api.get("/api/label/list", {"category": "nope"}, user=user).code == 300


@pytest.mark.parametrize("page_count", [0, 51, "x"])
def test_catalogue_page_size_is_bounded(api, user, page_count):
    assert api.get("/api/label/list", {"pageCount": page_count}, user=user).code == 300


def test_set_replaces_the_whole_set(app, api, user, seeded):
    first = api.post("/api/user/labels", {"labelIds": f"{seeded[0]},{seeded[1]},{seeded[2]}"}, user=user)
    assert first.status == 200, first.body
    assert [item["label_id"] for item in first.data["list"]] == seeded[:3]
    second = api.post("/api/user/labels", {"labelIds": f"{seeded[5]}, {seeded[1]},{seeded[5]}"}, user=user)
    assert sorted(item["label_id"] for item in second.data["list"]) == sorted([seeded[1], seeded[5]])
    assert api.get("/api/user/labels", user=user).data == second.data
    cleared = api.post("/api/user/labels", {"labelIds": ""}, user=user)
    assert cleared.data == {"user_id": user.user_id, "list": []}


def test_set_at_most_20(app, api, user, seeded):
    api.post("/api/user/labels", {"labelIds": str(seeded[0])}, user=user)
    reply = api.post("/api/user/labels", {"labelIds": ",".join(map(str, seeded[:21]))}, user=user)
    assert reply.status == 400 and reply.code == 300
    ok = api.post("/api/user/labels", {"labelIds": ",".join(map(str, seeded[:20]))}, user=user)
    assert len(ok.data["list"]) == 20


@pytest.mark.parametrize("value", ["999999", "abc", "1,,2", "-1", "0"])
def test_unknown_or_malformed_ids_refused_and_set_kept(app, api, user, seeded, value):
    api.post("/api/user/labels", {"labelIds": str(seeded[0])}, user=user)
    reply = api.post("/api/user/labels", {"labelIds": value}, user=user)
    assert reply.code in (300, 511) and reply.status in (400, 404)
    if value == "999999":
        assert reply.code == 511
    with app.app_context():
        kept = list(
            db.session.execute(db.select(UserLabel.label_id).where(UserLabel.user_id == user.user_id))
        )
    assert [row[0] for row in kept] == [seeded[0]]


def test_set_labels_only_touches_the_caller(app, api, auth, seeded):
    me, other = auth.login(), auth.login()
    api.post("/api/user/labels", {"labelIds": str(seeded[3])}, user=other)
    api.post("/api/user/labels", {"labelIds": str(seeded[4]), "peerId": other.user_id}, user=me)
    assert [i["label_id"] for i in api.get("/api/user/labels", user=other).data["list"]] == [seeded[3]]
    assert [i["label_id"] for i in api.get("/api/user/labels", user=me).data["list"]] == [seeded[4]]


def test_read_peer_labels_honours_visibility(app, api, auth, seeded):
    me, peer, hidden, blocker = auth.login(), auth.login(), auth.login(), auth.login()
    for someone in (peer, hidden, blocker):
        api.post("/api/user/labels", {"labelIds": str(seeded[7])}, user=someone)
    reply = api.get("/api/user/labels", {"peerId": peer.user_id}, user=me)
    assert reply.status == 200
    assert reply.data["user_id"] == peer.user_id
    assert [item["label_id"] for item in reply.data["list"]] == [seeded[7]]
    set_user_fields(app, hidden.user_id, authority=AUTHORITY_HIDDEN)
    block(app, blocker.user_id, me.user_id)
    for someone_id in (hidden.user_id, blocker.user_id, 999999):
        refused = api.get("/api/user/labels", {"peerId": someone_id}, user=me)
        assert refused.status == 404 and refused.code == 501
