"""Identifiers compare as bytes on every backend (migration 0003 on MariaDB): a clientMsgId,
an appkey or an order number that differs only by case is a different one."""

from __future__ import annotations

from dataclasses import replace

from flask import Flask
from sqlalchemy import text

from tests.chat_support import send_text
from tests.helpers import ApiClient
from wsgi_app.extensions import db
from wsgi_app.models.vip import Product
from wsgi_app.services.vip import purchases as vip

IDENTIFIER_COLUMNS = [
    ("applications", "appkey"),
    ("messages", "client_msg_id"),
    ("messages", "media_filename"),
    ("orders", "order_no"),
    ("orders", "provider_txn_id"),
    ("auth_tokens", "token_hash"),
    ("photos", "filename"),
]


def test_client_msg_ids_differing_by_case_are_two_messages(api: ApiClient, alice, bob) -> None:
    first = send_text(api, alice, bob, "first", client_msg_id="Msg-1")
    second = send_text(api, alice, bob, "second", client_msg_id="msg-1")
    assert first.status == second.status == 200, second.body
    assert second.data["duplicate"] is False
    assert first.data["message"]["msg_id"] != second.data["message"]["msg_id"]
    history = api.get("/api/chat/history", {"peerId": bob.user_id}, user=alice)
    assert [m["content"] for m in history.data["list"]] == ["second", "first"]
    again = send_text(api, alice, bob, "first", client_msg_id="Msg-1")
    assert again.data["duplicate"] is True  # the exact id still deduplicates


def test_an_appkey_differing_by_case_is_unknown(api: ApiClient) -> None:
    key = api.creds.appkey
    flipped = key.swapcase() if key.swapcase() != key else key + "X"
    other = ApiClient(api.transport, replace(api.creds, appkey=flipped))
    reply = other.post("/api/auth/sendsms", {"phone": "13800138000"})
    assert (reply.status, reply.code) == (401, 507)


def test_an_order_number_differing_by_case_is_not_found(app: Flask, api: ApiClient, user) -> None:
    with app.app_context():
        vip.seed_products()
        product_id = db.session.execute(db.select(Product.id)).scalars().first()
    order_no = api.post("/api/vip/order", {"productId": product_id}, user=user).data["order_no"]
    variant = order_no.lower() if order_no.lower() != order_no else order_no.upper()
    assert variant != order_no, "order numbers need letters for this test"
    reply = api.get("/api/vip/order/detail", {"orderNo": variant}, user=user)
    assert (reply.status, reply.code) == (404, 511)
    assert api.get("/api/vip/order/detail", {"orderNo": order_no}, user=user).status == 200


def test_identifier_columns_are_binary_on_mariadb(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name not in ("mysql", "mariadb"):
            return  # SQLite's default collation is BINARY already
        for table, column in IDENTIFIER_COLUMNS:
            collation: str = db.session.execute(
                text(
                    "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = :c"
                ),
                {"t": table, "c": column},
            ).scalar_one()
            assert collation == "utf8mb4_bin", (table, column)
