"""Blocking, unblocking, the block list, and reporting users."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.helpers import ApiClient
from wsgi_app.extensions import db
from wsgi_app.models.social import Block, Report


def blocks_of(app: Flask) -> set[tuple[int, int]]:
    with app.app_context():
        return {(b.blocker_id, b.blocked_id) for b in db.session.execute(db.select(Block)).scalars()}


def reports_in(app: Flask) -> list[tuple[int | None, int | None, str, str | None, str]]:
    with app.app_context():
        rows = db.session.execute(db.select(Report).order_by(Report.id)).scalars()
        return [(r.reporter_id, r.reported_id, r.reason, r.detail, r.status) for r in rows]


# -- block / unblock ------------------------------------------------------------------


def test_block_is_stored_and_idempotent(app: Flask, api: ApiClient, alice, bob) -> None:
    reply = api.post("/api/block/add", {"peerId": bob.user_id}, user=alice)
    assert reply.status == 200
    assert reply.data == {"peer_id": bob.user_id, "blocked": True}
    again = api.post("/api/block/add", {"peerId": bob.user_id}, user=alice)
    assert again.status == 200
    assert blocks_of(app) == {(alice.user_id, bob.user_id)}


def test_block_takes_effect_in_show_both_ways(api: ApiClient, alice, bob) -> None:
    assert api.get("/api/user/show", {"peerId": bob.user_id}, user=alice).status == 200
    assert api.post("/api/block/add", {"peerId": bob.user_id}, user=alice).status == 200
    seen_by_blocker = api.get("/api/user/show", {"peerId": bob.user_id}, user=alice)
    seen_by_blocked = api.get("/api/user/show", {"peerId": alice.user_id}, user=bob)
    assert (seen_by_blocker.status, seen_by_blocker.code) == (404, 501)
    assert (seen_by_blocked.status, seen_by_blocked.code) == (404, 501)
    # Each still sees their own profile.
    assert api.get("/api/user/show", user=bob).status == 200


def test_unblock_restores_visibility(app: Flask, api: ApiClient, alice, bob) -> None:
    api.post("/api/block/add", {"peerId": bob.user_id}, user=alice)
    reply = api.post("/api/block/remove", {"peerId": bob.user_id}, user=alice)
    assert reply.status == 200
    assert reply.data == {"peer_id": bob.user_id, "blocked": False}
    assert blocks_of(app) == set()
    assert api.get("/api/user/show", {"peerId": alice.user_id}, user=bob).status == 200
    # Removing a block that is not there is fine too.
    assert api.post("/api/block/remove", {"peerId": bob.user_id}, user=alice).status == 200


def test_unblock_cannot_lift_the_other_persons_block(app: Flask, api: ApiClient, alice, bob) -> None:
    api.post("/api/block/add", {"peerId": bob.user_id}, user=alice)
    reply = api.post("/api/block/remove", {"peerId": alice.user_id}, user=bob)
    assert reply.status == 200
    assert reply.data == {"peer_id": alice.user_id, "blocked": True}
    assert blocks_of(app) == {(alice.user_id, bob.user_id)}
    assert api.get("/api/user/show", {"peerId": alice.user_id}, user=bob).code == 501


@pytest.mark.parametrize("path", ["/api/block/add", "/api/block/remove"])
def test_block_refusals(app: Flask, api: ApiClient, alice, path: str) -> None:
    yourself = api.post(path, {"peerId": alice.user_id}, user=alice)
    assert (yourself.status, yourself.code) == (400, 300)
    nobody = api.post(path, {"peerId": alice.user_id + 1000}, user=alice)
    assert (nobody.status, nobody.code) == (404, 501)
    missing = api.post(path, {}, user=alice)
    assert (missing.status, missing.code) == (400, 300)
    garbage = api.post(path, {"peerId": "1 OR 1=1"}, user=alice)
    assert (garbage.status, garbage.code) == (400, 300)
    assert blocks_of(app) == set()


def test_block_needs_the_token_of_the_claimed_user(app: Flask, api: ApiClient, alice, bob) -> None:
    forged = api.post("/api/block/add", {"peerId": bob.user_id, "userId": bob.user_id, "token": alice.token})
    assert (forged.status, forged.code) == (401, 504)
    assert blocks_of(app) == set()


def test_block_list_is_own_paginated_and_latest_first(api: ApiClient, auth, alice) -> None:
    peers = [auth.login() for _ in range(3)]
    for peer in peers:
        assert api.post("/api/block/add", {"peerId": peer.user_id}, user=alice).status == 200
    api.post("/api/block/add", {"peerId": alice.user_id}, user=peers[0])  # a block on alice: not hers
    first = api.get("/api/block/list", {"page": 1, "pageCount": 2}, user=alice)
    assert first.status == 200
    assert first.data["total"] == 3 and first.data["has_next"] is True
    second = api.get("/api/block/list", {"page": 2, "pageCount": 2}, user=alice)
    assert second.data["has_next"] is False
    listed = [item["user_id"] for item in first.data["list"] + second.data["list"]]
    assert sorted(listed) == sorted(p.user_id for p in peers)
    item = first.data["list"][0]
    assert set(item) == {"user_id", "nickname", "avatar", "blocked_at"}
    theirs = api.get("/api/block/list", user=peers[0])
    assert [i["user_id"] for i in theirs.data["list"]] == [alice.user_id]


def test_block_list_page_size_has_a_maximum(api: ApiClient, alice) -> None:
    assert api.get("/api/block/list", {"pageCount": 50}, user=alice).status == 200
    reply = api.get("/api/block/list", {"pageCount": 51}, user=alice)
    assert (reply.status, reply.code) == (400, 300)


# -- reports --------------------------------------------------------------------------


def test_report_is_stored_for_moderation(app: Flask, api: ApiClient, alice, bob) -> None:
    reply = api.post(
        "/api/report/add", {"peerId": bob.user_id, "reason": "spam", "detail": " sells stuff "}, user=alice
    )
    assert reply.status == 200
    assert reply.data["status"] == "open" and isinstance(reply.data["report_id"], int)
    no_detail = api.post("/api/report/add", {"peerId": bob.user_id, "reason": "fake_profile"}, user=alice)
    assert no_detail.status == 200
    assert reports_in(app) == [
        (alice.user_id, bob.user_id, "spam", "sells stuff", "open"),
        (alice.user_id, bob.user_id, "fake_profile", None, "open"),
    ]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"reason": "spam"}, 400, 300),  # no peerId
        ({"peerId": "{bob}"}, 400, 300),  # no reason
        ({"peerId": "{bob}", "reason": "ugly"}, 400, 300),  # not in the list
        ({"peerId": "{bob}", "reason": "other", "detail": "x" * 501}, 400, 300),
        ({"peerId": "{alice}", "reason": "spam"}, 400, 300),  # yourself
        ({"peerId": "{nobody}", "reason": "spam"}, 404, 501),
    ],
)
def test_report_refusals(
    app: Flask, api: ApiClient, alice, bob, params: dict, status: int, code: int
) -> None:
    ids = {"{alice}": alice.user_id, "{bob}": bob.user_id, "{nobody}": bob.user_id + 1000}
    resolved = {k: ids.get(v, v) for k, v in params.items()}
    reply = api.post("/api/report/add", resolved, user=alice)
    assert (reply.status, reply.code) == (status, code)
    assert reports_in(app) == []


def test_report_needs_the_token_of_the_claimed_user(app: Flask, api: ApiClient, alice, bob) -> None:
    forged = api.post(
        "/api/report/add",
        {"peerId": alice.user_id, "reason": "spam", "userId": bob.user_id, "token": alice.token},
    )
    assert (forged.status, forged.code) == (401, 504)
    listed = api.get("/api/block/list", {"userId": bob.user_id, "token": alice.token})
    assert (listed.status, listed.code) == (401, 504)
    assert reports_in(app) == []


def test_detail_of_exactly_500_characters_is_accepted(api: ApiClient, alice, bob) -> None:
    reply = api.post(
        "/api/report/add", {"peerId": bob.user_id, "reason": "other", "detail": "é" * 500}, user=alice
    )
    assert reply.status == 200


def test_reports_are_rate_limited_per_reporter(app: Flask, api: ApiClient, auth, alice, bob) -> None:
    app.config["REPORT_LIMITS"] = [(2, 3600)]
    for _ in range(2):
        assert (
            api.post("/api/report/add", {"peerId": bob.user_id, "reason": "spam"}, user=alice).status == 200
        )
    refused = api.post("/api/report/add", {"peerId": bob.user_id, "reason": "spam"}, user=alice)
    assert (refused.status, refused.code) == (429, 429)
    assert int(refused.headers["Retry-After"]) > 0
    # Another reporter has their own allowance.
    carol = auth.login()
    assert api.post("/api/report/add", {"peerId": bob.user_id, "reason": "spam"}, user=carol).status == 200
    assert len(reports_in(app)) == 3
