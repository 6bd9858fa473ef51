"""``/api/vip``: the VIP catalogue, ordering, own orders, VIP status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import OBJECT_NOT_FOUND, RATE_LIMITED
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import Caller, UserCaller
from wsgi_app.services.profile import profiles
from wsgi_app.services.vip import purchases as vip
from wsgi_app.services.vip import schemas

bp = Blueprint("vip", __name__, url_prefix="/api/vip")


@bp.route("/products", methods=["GET"])
@endpoint(summary="The VIP products on sale", auth="app", data_schema=schemas.PRODUCT_LIST_SCHEMA)
def products(caller: Caller) -> dict[str, Any]:
    return {"list": [vip.product_data(p) for p in vip.active_products()]}


@bp.route("/order", methods=["POST"])
@endpoint(
    summary="Order a VIP product: a pending order and what the client needs to pay it",
    params=[Param("productId", "integer", required=True, minimum=1, maximum=2**31 - 1)],
    errors=[OBJECT_NOT_FOUND, RATE_LIMITED],
    data_schema=schemas.NEW_ORDER_SCHEMA,
    description="VIP time is added when the payment provider's callback confirms the payment. "
    "Limits: 10 orders per 10 minutes, 30 per day.",
)
def order(caller: UserCaller, product_id: int) -> dict[str, Any]:
    return vip.create_order(caller.user_id, product_id)


@bp.route("/order/detail", methods=["GET"])
@endpoint(
    summary="One of your orders (to see whether the payment landed)",
    params=[Param("orderNo", required=True, max_length=32, pattern=r"[A-Za-z0-9]+")],
    errors=[OBJECT_NOT_FOUND],
    data_schema=schemas.ORDER_SCHEMA,
    description="Another user's order is answered like a missing one (511).",
)
def order_detail(caller: UserCaller, order_no: str) -> dict[str, Any]:
    return vip.order_data(vip.own_order(caller.user_id, order_no))


@bp.route("/orders", methods=["GET"])
@endpoint(
    summary="Your orders, newest first",
    params=PAGINATION,
    data_schema=schemas.ORDER_PAGE_SCHEMA,
)
def orders(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    return vip.orders_page(caller.user_id, page, page_count)


@bp.route("/status", methods=["GET"])
@endpoint(summary="Whether you are VIP, and until when", data_schema=schemas.VIP_STATUS_SCHEMA)
def status(caller: UserCaller) -> dict[str, Any]:
    return vip.vip_status_data(profiles.get_user(caller.user_id))
