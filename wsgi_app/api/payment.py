"""``/api/payment/callback``: the payment provider tells us an order was paid.

Not signed with an app key: the provider signs it (515 otherwise). Idempotent:
a repeated callback changes nothing and is answered with success again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint, request_params
from wsgi_app.errors import CONFLICT, OBJECT_NOT_FOUND, PAYMENT_MISMATCH, PAYMENT_SIGN_INVALID
from wsgi_app.params import Param
from wsgi_app.services.vip import payments
from wsgi_app.services.vip import purchases as vip
from wsgi_app.services.vip.schemas import CALLBACK_RESULT_SCHEMA

bp = Blueprint("payment", __name__, url_prefix="/api/payment")


@bp.route("/callback", methods=["POST"])
@endpoint(
    summary="Payment provider callback (signed by the provider)",
    auth="none",
    params=[
        Param("order_no", required=True, max_length=32),
        Param("txn_id", required=True, max_length=64, description="the provider's transaction id"),
        Param("amount_cents", "integer", required=True, minimum=0, maximum=10**12),
        Param("currency", required=True, pattern=r"[A-Z]{3}"),
        Param("status", required=True, enum=payments.CALLBACK_STATUSES),
        Param("sign", required=True, max_length=128, description="HMAC-SHA256, see docs/api.md"),
    ],
    errors=[PAYMENT_SIGN_INVALID, PAYMENT_MISMATCH, OBJECT_NOT_FOUND, CONFLICT],
    data_schema=CALLBACK_RESULT_SCHEMA,
    description="The signature is checked first. Amount and currency must match the order. "
    "The first 'paid' callback adds the product's days to the buyer's VIP time; repeats change nothing.",
)
def callback(caller: None, **_parsed: Any) -> dict[str, Any]:
    notice = payments.get_provider().verify_callback(request_params())
    return vip.apply_payment(notice)
