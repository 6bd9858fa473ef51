"""VIP: products, orders, status, and the payment provider's callback."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from tests.helpers import ApiClient, SignedInUser
from wsgi_app.extensions import db
from wsgi_app.models.user import User
from wsgi_app.models.vip import Order, Product
from wsgi_app.services.vip import payments
from wsgi_app.services.vip import purchases as vip
from wsgi_app.timeutil import utcnow


@pytest.fixture
def products(app: Flask) -> dict[str, int]:
    """Seeded products: code -> product id."""
    with app.app_context():
        vip.seed_products()
        return {p.code: p.id for p in db.session.execute(db.select(Product)).scalars()}


def order(api: ApiClient, user: SignedInUser, product_id: int) -> dict[str, Any]:
    reply = api.post("/api/vip/order", {"productId": product_id}, user=user)
    assert reply.status == 200, reply.body
    return reply.data


def callback_params(app: Flask, order_no: str, **overrides: Any) -> dict[str, str]:
    """A correctly signed provider callback for ``order_no`` (amount/currency from the order)."""
    with app.app_context():
        row = db.session.execute(db.select(Order).where(Order.order_no == order_no)).scalar_one()
        fields = {"amount_cents": row.amount_cents, "currency": row.currency, **overrides}
        return payments.fake_provider().signed_callback(order_no, **fields)


def post_callback(client, params: dict[str, str]):
    return client.post("/api/payment/callback", data=params)


def vip_deadline(app: Flask, user_id: int) -> datetime | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return user.vip_expires_at


def set_deadline(app: Flask, user_id: int, when: datetime | None) -> None:
    with app.app_context():
        db.session.execute(db.update(User).where(User.id == user_id).values(vip_expires_at=when))
        db.session.commit()  # no cached column: nothing to say


# -- products -------------------------------------------------------------------------


def test_seed_command_is_idempotent(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["products", "seed"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["added"] == 3
    second = runner.invoke(args=["products", "seed"])
    assert json.loads(second.output) == {"added": 0, "updated": 0, "products": 3}
    with app.app_context():
        rows = db.session.execute(db.select(Product.code, Product.days)).all()
    assert sorted(rows) == [("vip_monthly", 30), ("vip_quarterly", 90), ("vip_yearly", 365)]


def test_products_list_shows_active_products_only(
    app: Flask, api: ApiClient, products: dict[str, int]
) -> None:
    with app.app_context():
        db.session.execute(db.update(Product).where(Product.code == "vip_yearly").values(is_active=False))
        db.session.commit()
    reply = api.get("/api/vip/products")
    assert reply.status == 200
    listed = reply.data["list"]
    assert [p["code"] for p in listed] == ["vip_monthly", "vip_quarterly"]
    assert listed[0] == {
        "product_id": products["vip_monthly"],
        "code": "vip_monthly",
        "name": "VIP, 1 month",
        "days": 30,
        "price_cents": 3000,
        "currency": "CNY",
    }


def test_products_need_a_signature(client) -> None:
    reply = client.get("/api/vip/products")
    assert reply.status_code == 400 and reply.get_json()["code"] == 300


# -- orders ---------------------------------------------------------------------------


def test_order_creates_a_pending_order_with_payment_details(
    app: Flask, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    data = order(api, user, products["vip_quarterly"])
    assert data["status"] == "pending" and data["paid_at"] is None
    assert (data["amount_cents"], data["currency"], data["days"]) == (8000, "CNY", 90)
    assert data["payment"] == {
        "provider": "fake",
        "order_no": data["order_no"],
        "amount_cents": 8000,
        "currency": "CNY",
        "subject": "VIP, 3 months",
    }
    other = order(api, user, products["vip_quarterly"])
    assert other["order_no"] != data["order_no"]
    with app.app_context():
        row = db.session.execute(db.select(Order).where(Order.order_no == data["order_no"])).scalar_one()
        assert row.user_id == user.user_id and row.status == "pending"
    assert vip_deadline(app, user.user_id) is None  # nothing until paid


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [({}, 400, 300), ({"productId": "x"}, 400, 300), ({"productId": 999999}, 404, 511)],
)
def test_order_refusals(
    api: ApiClient, user: SignedInUser, products: dict[str, int], params: dict, status: int, code: int
) -> None:
    reply = api.post("/api/vip/order", params, user=user)
    assert (reply.status, reply.code) == (status, code)


def test_order_of_inactive_product_is_refused(
    app: Flask, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    with app.app_context():
        db.session.execute(db.update(Product).values(is_active=False))
        db.session.commit()
    reply = api.post("/api/vip/order", {"productId": products["vip_monthly"]}, user=user)
    assert (reply.status, reply.code) == (404, 511)


def test_order_needs_a_valid_token(api: ApiClient, user: SignedInUser, products: dict[str, int]) -> None:
    reply = api.post(
        "/api/vip/order", {"productId": products["vip_monthly"], "userId": user.user_id, "token": "nope"}
    )
    assert (reply.status, reply.code) == (401, 504)


def test_orders_are_rate_limited(
    app: Flask, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    app.config["ORDER_LIMITS"] = [(2, 600)]
    order(api, user, products["vip_monthly"])
    order(api, user, products["vip_monthly"])
    reply = api.post("/api/vip/order", {"productId": products["vip_monthly"]}, user=user)
    assert (reply.status, reply.code) == (429, 429)
    assert int(reply.headers["Retry-After"]) > 0


def test_orders_list_is_own_only_and_paginated(auth, api: ApiClient, products: dict[str, int]) -> None:
    alice, bob = auth.login(), auth.login()
    mine = [order(api, alice, products["vip_monthly"])["order_no"] for _ in range(3)]
    order(api, bob, products["vip_yearly"])
    first = api.get("/api/vip/orders", {"page": 1, "pageCount": 2}, user=alice)
    assert first.status == 200
    assert first.data["total"] == 3 and first.data["has_next"] is True
    second = api.get("/api/vip/orders", {"page": 2, "pageCount": 2}, user=alice)
    assert second.data["has_next"] is False
    listed = [o["order_no"] for o in first.data["list"] + second.data["list"]]
    assert sorted(listed) == sorted(mine)


def test_orders_and_status_refuse_another_users_token(auth, api: ApiClient, products: dict[str, int]) -> None:
    alice, bob = auth.login(), auth.login()
    order(api, alice, products["vip_monthly"])
    as_alice_with_bobs_token = {"userId": alice.user_id, "token": bob.token}
    for path in ("/api/vip/orders", "/api/vip/status"):
        reply = api.get(path, as_alice_with_bobs_token)
        assert (reply.status, reply.code) == (401, 504), path
    ordered = api.post("/api/vip/order", {"productId": products["vip_monthly"], **as_alice_with_bobs_token})
    assert (ordered.status, ordered.code) == (401, 504)
    assert api.get("/api/vip/orders", user=bob).data["total"] == 0


def test_orders_page_size_has_a_maximum(api: ApiClient, user: SignedInUser) -> None:
    assert api.get("/api/vip/orders", {"pageCount": 50}, user=user).status == 200
    reply = api.get("/api/vip/orders", {"pageCount": 51}, user=user)
    assert (reply.status, reply.code) == (400, 300)


def test_order_detail_of_another_users_order_is_not_found(
    auth, api: ApiClient, products: dict[str, int]
) -> None:
    alice, bob = auth.login(), auth.login()
    order_no = order(api, alice, products["vip_monthly"])["order_no"]
    own = api.get("/api/vip/order/detail", {"orderNo": order_no}, user=alice)
    assert own.status == 200 and own.data["order_no"] == order_no
    theirs = api.get("/api/vip/order/detail", {"orderNo": order_no}, user=bob)
    assert (theirs.status, theirs.code) == (404, 511)
    missing = api.get("/api/vip/order/detail", {"orderNo": "DT0"}, user=alice)
    assert (missing.status, missing.code) == (404, 511)


def test_status_of_a_new_user(api: ApiClient, user: SignedInUser) -> None:
    reply = api.get("/api/vip/status", user=user)
    assert reply.status == 200
    assert reply.data == {"is_vip": False, "vip_expires_at": None}


# -- payment callback -----------------------------------------------------------------


def test_paid_callback_marks_order_paid_and_grants_vip(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    before = utcnow()
    reply = post_callback(client, callback_params(app, order_no))
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_json()["data"] == {"order_no": order_no, "status": "paid"}
    deadline = vip_deadline(app, user.user_id)
    assert deadline is not None
    assert before + timedelta(days=30) - timedelta(seconds=1) <= deadline <= utcnow() + timedelta(days=30)
    status = api.get("/api/vip/status", user=user).data
    assert status["is_vip"] is True
    assert status["vip_expires_at"] == deadline.strftime("%Y-%m-%d %H:%M:%S")
    detail = api.get("/api/vip/order/detail", {"orderNo": order_no}, user=user).data
    assert detail["status"] == "paid" and detail["paid_at"] is not None


def test_repeated_callback_changes_nothing_and_succeeds_again(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    params = callback_params(app, order_no)
    assert post_callback(client, params).status_code == 200
    deadline = vip_deadline(app, user.user_id)
    again = post_callback(client, params)
    assert again.status_code == 200
    assert again.get_json()["data"] == {"order_no": order_no, "status": "paid"}
    other_txn = post_callback(client, callback_params(app, order_no, txn_id="SECOND"))
    assert other_txn.status_code == 200
    assert vip_deadline(app, user.user_id) == deadline


def test_vip_extends_from_the_current_deadline_when_still_vip(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    current = (utcnow() + timedelta(days=10)).replace(microsecond=0)
    set_deadline(app, user.user_id, current)
    order_no = order(api, user, products["vip_quarterly"])["order_no"]
    assert post_callback(client, callback_params(app, order_no)).status_code == 200
    assert vip_deadline(app, user.user_id) == current + timedelta(days=90)


def test_vip_extends_from_now_when_expired(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    set_deadline(app, user.user_id, utcnow() - timedelta(days=100))
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    before = utcnow()
    assert post_callback(client, callback_params(app, order_no)).status_code == 200
    deadline = vip_deadline(app, user.user_id)
    assert deadline is not None and deadline >= before + timedelta(days=30) - timedelta(seconds=1)
    assert api.get("/api/vip/status", user=user).data["is_vip"] is True


def test_expired_vip_reports_not_vip(app: Flask, api: ApiClient, user: SignedInUser) -> None:
    set_deadline(app, user.user_id, utcnow() - timedelta(seconds=5))
    assert api.get("/api/vip/status", user=user).data == {"is_vip": False, "vip_expires_at": None}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(sign="0" * 64),
        lambda p: p.pop("sign"),
        lambda p: p.update(amount_cents="1"),  # changed after signing
        lambda p: p.update(extra="x"),  # an unsigned extra parameter
    ],
)
def test_callback_with_a_bad_signature_is_refused(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int], tamper
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    params = callback_params(app, order_no)
    tamper(params)
    reply = post_callback(client, params)
    if "sign" not in params:
        assert (reply.status_code, reply.get_json()["code"]) == (400, 300)
    else:
        assert (reply.status_code, reply.get_json()["code"]) == (401, 515)
    assert vip_deadline(app, user.user_id) is None


def test_callback_signed_with_another_secret_is_refused(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    forged = payments.FakePaymentProvider("guessed-secret").signed_callback(order_no, 3000, "CNY")
    reply = post_callback(client, forged)
    assert (reply.status_code, reply.get_json()["code"]) == (401, 515)
    assert vip_deadline(app, user.user_id) is None


@pytest.mark.parametrize("overrides", [{"amount_cents": 1}, {"currency": "USD"}])
def test_callback_that_does_not_match_the_order_is_refused(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int], overrides
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    reply = post_callback(client, callback_params(app, order_no, **overrides))
    assert (reply.status_code, reply.get_json()["code"]) == (400, 530)
    assert vip_deadline(app, user.user_id) is None
    detail = api.get("/api/vip/order/detail", {"orderNo": order_no}, user=user).data
    assert detail["status"] == "pending"


def test_callback_for_an_unknown_order_is_refused(app: Flask, client) -> None:
    with app.app_context():
        params = payments.fake_provider().signed_callback("DTNOSUCHORDER", 3000, "CNY")
    reply = post_callback(client, params)
    assert (reply.status_code, reply.get_json()["code"]) == (404, 511)


def test_failed_then_paid_callbacks(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    failed = post_callback(client, callback_params(app, order_no, status="failed"))
    assert failed.get_json()["data"]["status"] == "failed"
    assert vip_deadline(app, user.user_id) is None
    paid = post_callback(client, callback_params(app, order_no))
    assert paid.get_json()["data"]["status"] == "paid"
    assert vip_deadline(app, user.user_id) is not None
    late_failure = post_callback(client, callback_params(app, order_no, status="failed"))
    assert late_failure.get_json()["data"]["status"] == "paid"


def test_one_transaction_id_cannot_pay_two_orders(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    first = order(api, user, products["vip_monthly"])["order_no"]
    second = order(api, user, products["vip_monthly"])["order_no"]
    assert post_callback(client, callback_params(app, first, txn_id="T1")).status_code == 200
    deadline = vip_deadline(app, user.user_id)
    reply = post_callback(client, callback_params(app, second, txn_id="T1"))
    assert (reply.status_code, reply.get_json()["code"]) == (409, 409)
    assert vip_deadline(app, user.user_id) == deadline


def _apply_concurrently(app: Flask, notices: list[payments.PaymentNotice]) -> list[BaseException]:
    barrier = threading.Barrier(len(notices))
    failures: list[BaseException] = []

    def run(notice: payments.PaymentNotice) -> None:
        with app.app_context():
            barrier.wait(10)
            try:
                vip.apply_payment(notice)
            except BaseException as exc:  # collected, asserted below
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in notices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return failures


def test_concurrent_duplicate_callbacks_extend_once(
    app: Flask, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    notice = payments.PaymentNotice(order_no, "TXN-DUP", 3000, "CNY", "paid")
    before = utcnow()
    assert _apply_concurrently(app, [notice] * 6) == []
    deadline = vip_deadline(app, user.user_id)
    assert deadline is not None
    assert deadline <= utcnow() + timedelta(days=30)
    assert deadline >= before + timedelta(days=30) - timedelta(seconds=1)


def test_concurrent_payments_of_two_orders_both_count(
    app: Flask, api: ApiClient, user: SignedInUser, products: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Widen the gap between reading the deadline and writing the new one, so that
    # without the row lock both payments would read the same old deadline.
    def slow_timedelta(*args: Any, **kwargs: Any) -> timedelta:
        time.sleep(0.3)
        return timedelta(*args, **kwargs)

    monkeypatch.setattr("wsgi_app.services.vip.purchases.timedelta", slow_timedelta)
    start = (utcnow() + timedelta(days=5)).replace(microsecond=0)
    set_deadline(app, user.user_id, start)
    first = order(api, user, products["vip_monthly"])["order_no"]
    second = order(api, user, products["vip_quarterly"])["order_no"]
    notices = [
        payments.PaymentNotice(first, "TXN-A", 3000, "CNY", "paid"),
        payments.PaymentNotice(second, "TXN-B", 8000, "CNY", "paid"),
    ]
    assert _apply_concurrently(app, notices) == []
    assert vip_deadline(app, user.user_id) == start + timedelta(days=120)


def test_simulate_command_prints_a_callback_the_endpoint_accepts(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_yearly"])["order_no"]
    result = app.test_cli_runner().invoke(args=["payments", "simulate", order_no])
    assert result.exit_code == 0, result.output
    params = json.loads(result.output)
    assert params["order_no"] == order_no and params["amount_cents"] == "28800"
    assert post_callback(client, params).get_json()["data"]["status"] == "paid"
    missing = app.test_cli_runner().invoke(args=["payments", "simulate", "DTNOPE"])
    assert missing.exit_code != 0


def test_simulate_command_sends_to_a_live_server(
    app: Flask, live_server, live_api: ApiClient, sms_inbox, products: dict[str, int]
) -> None:
    buyer = live_api.sign_in("13900000001", sms_inbox)
    order_no = order(live_api, buyer, products["vip_monthly"])["order_no"]
    result = app.test_cli_runner().invoke(
        args=["payments", "simulate", order_no, "--send", live_server.base_url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["data"] == {
        "order_no": order_no,
        "status": "paid",
    }
    assert live_api.get("/api/vip/status", user=buyer).data["is_vip"] is True


def test_an_empty_provider_secret_refuses_every_callback(
    app: Flask, client, api: ApiClient, user: SignedInUser, products: dict[str, int]
) -> None:
    order_no = order(api, user, products["vip_monthly"])["order_no"]
    params = callback_params(app, order_no)
    app.config["PAYMENT_PROVIDER_SECRET"] = ""
    reply = post_callback(client, params)
    assert (reply.status_code, reply.get_json()["code"]) == (401, 515)
