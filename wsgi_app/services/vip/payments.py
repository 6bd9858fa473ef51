"""Payment providers: what the client needs to pay, and checking the provider's callbacks.

A provider is anything with the :class:`PaymentProvider` shape. The one that
ships is :class:`FakePaymentProvider`: it takes no money, but signs its
callbacks the way a real provider does (HMAC-SHA256 with the shared secret
``PAYMENT_PROVIDER_SECRET`` over a canonical string), so the callback endpoint
runs the same checks it would run in production. Tests and
``flask --app wsgi_app payments simulate ORDER_NO`` build callbacks with it.

Canonical string of a callback (every parameter but ``sign``)::

    DT-PAY-HMAC-SHA256\\n<percent-encoded sorted k=v pairs joined by &>
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app

from wsgi_app.errors import PARAM_INVALID, PAYMENT_SIGN_INVALID, ApiError
from wsgi_app.models.vip import Order
from wsgi_app.services.auth.signing import canonical_query, hmac_sha256_hex

CALLBACK_PATH = "/api/payment/callback"
CANONICAL_PREFIX = "DT-PAY-HMAC-SHA256"
STATUS_PAID = "paid"
STATUS_FAILED = "failed"
CALLBACK_STATUSES = (STATUS_PAID, STATUS_FAILED)
_CENTS_RE = re.compile(r"[0-9]{1,12}")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class PaymentNotice:
    """A verified callback: the provider says this order was paid (or failed)."""

    order_no: str
    txn_id: str
    amount_cents: int
    currency: str
    status: str


class PaymentProvider(Protocol):
    """What the VIP service needs from a payment provider."""

    name: str

    def checkout(self, order: Order, subject: str) -> dict[str, Any]:
        """What the client needs to start paying ``order`` (returned by ``POST /api/vip/order``)."""
        ...

    def verify_callback(self, params: Mapping[str, str]) -> PaymentNotice:
        """Check a callback's signature and shape; raise 515 (bad signature) or 300 (malformed)."""
        ...


def canonical_string(params: Mapping[str, str]) -> str:
    return CANONICAL_PREFIX + "\n" + canonical_query(params)


def sign_callback(params: Mapping[str, str], secret: str) -> str:
    if not secret:
        raise ValueError("refusing to sign with an empty secret")
    return hmac_sha256_hex(secret, canonical_string(params))


class FakePaymentProvider:
    """A local stand-in for a payment provider, signing like a real one."""

    name = "fake"

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def checkout(self, order: Order, subject: str) -> dict[str, Any]:
        return {
            "provider": self.name,
            "order_no": order.order_no,
            "amount_cents": order.amount_cents,
            "currency": order.currency,
            "subject": subject,
        }

    def signed_callback(
        self,
        order_no: str,
        amount_cents: int,
        currency: str,
        *,
        status: str = STATUS_PAID,
        txn_id: str | None = None,
    ) -> dict[str, str]:
        """The form parameters the provider would POST to ``CALLBACK_PATH``."""
        params = {
            "order_no": order_no,
            "txn_id": txn_id or "FAKE" + secrets.token_hex(12).upper(),
            "amount_cents": str(amount_cents),
            "currency": currency,
            "status": status,
        }
        params["sign"] = sign_callback(params, self.secret)
        return params

    def verify_callback(self, params: Mapping[str, str]) -> PaymentNotice:
        given = params.get("sign") or ""
        if not self.secret or not given:
            raise ApiError(PAYMENT_SIGN_INVALID)
        expected = sign_callback(params, self.secret)
        if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8")):
            raise ApiError(PAYMENT_SIGN_INVALID)
        return notice_from_params(params)


def notice_from_params(params: Mapping[str, str]) -> PaymentNotice:
    """Shape check of an already verified callback."""
    amount = params.get("amount_cents", "")
    currency = params.get("currency", "")
    status = params.get("status", "")
    order_no = params.get("order_no", "")
    txn_id = params.get("txn_id", "")
    if not _CENTS_RE.fullmatch(amount):
        raise ApiError(PARAM_INVALID, "amount_cents: must be a non-negative integer")
    if not _CURRENCY_RE.match(currency):
        raise ApiError(PARAM_INVALID, "currency: must be a 3-letter code")
    if status not in CALLBACK_STATUSES:
        raise ApiError(PARAM_INVALID, "status: must be one of " + ", ".join(CALLBACK_STATUSES))
    if not order_no or not txn_id:
        raise ApiError(PARAM_INVALID, "order_no and txn_id are required")
    return PaymentNotice(order_no, txn_id, int(amount), currency, status)


def get_provider() -> PaymentProvider:
    """The provider named by ``PAYMENT_PROVIDER`` (only ``fake`` ships)."""
    name = current_app.config["PAYMENT_PROVIDER"]
    if name == FakePaymentProvider.name:
        return FakePaymentProvider(current_app.config["PAYMENT_PROVIDER_SECRET"])
    raise RuntimeError(f"unknown PAYMENT_PROVIDER {name!r}")


def fake_provider() -> FakePaymentProvider:
    """The fake provider with this app's secret (for simulations and tests)."""
    return FakePaymentProvider(current_app.config["PAYMENT_PROVIDER_SECRET"])
