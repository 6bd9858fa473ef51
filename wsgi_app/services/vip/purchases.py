"""VIP: the product catalogue, orders, and extending VIP time when a payment lands.

A paid callback flips its order from ``pending`` (or ``failed``: a retry may
succeed) to ``paid`` with one conditional UPDATE (``... WHERE status IN
('pending', 'failed')``): of any number of
concurrent or repeated callbacks exactly one changes the row, and only that
one extends the buyer's VIP time, under a row lock on the user so two orders
paid at once both count. The new deadline is ``max(now, current deadline) + days``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, func
from sqlalchemy.exc import IntegrityError

from wsgi_app import transactions
from wsgi_app.errors import CONFLICT, OBJECT_NOT_FOUND, PAYMENT_MISMATCH, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.user import User
from wsgi_app.models.vip import Order, Product
from wsgi_app.services import rate_limit
from wsgi_app.services.events import producer as event_producer
from wsgi_app.services.vip.payments import STATUS_PAID, PaymentNotice, get_provider
from wsgi_app.services.vip.schemas import ORDER_STATUSES
from wsgi_app.services.vip.status import is_vip
from wsgi_app.timeutil import format_wire_datetime, utcnow

log = logging.getLogger("datingtoday.vip")

ORDER_PENDING, ORDER_PAID, ORDER_FAILED = ORDER_STATUSES


@dataclass(frozen=True)
class ProductSeed:
    code: str
    name: str
    days: int
    price_cents: int
    currency: str = "CNY"


PRODUCT_SEEDS = (
    ProductSeed("vip_monthly", "VIP, 1 month", 30, 3000),
    ProductSeed("vip_quarterly", "VIP, 3 months", 90, 8000),
    ProductSeed("vip_yearly", "VIP, 1 year", 365, 28800),
)

# -- products -------------------------------------------------------------------------


def seed_products() -> tuple[int, int]:
    """Insert missing catalogue products and correct changed ones; returns (added, updated)."""
    added = updated = 0
    for seed in PRODUCT_SEEDS:
        product = db.session.execute(db.select(Product).where(Product.code == seed.code)).scalar_one_or_none()
        if product is None:
            db.session.add(
                Product(
                    code=seed.code,
                    name=seed.name,
                    days=seed.days,
                    price_cents=seed.price_cents,
                    currency=seed.currency,
                    is_active=True,
                )
            )
            added += 1
            continue
        wanted = {
            "name": seed.name,
            "days": seed.days,
            "price_cents": seed.price_cents,
            "currency": seed.currency,
        }
        if any(getattr(product, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(product, key, value)
            updated += 1
    db.session.commit()
    return added, updated


def product_data(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.id,
        "code": product.code,
        "name": product.name,
        "days": product.days,
        "price_cents": product.price_cents,
        "currency": product.currency,
    }


def active_products() -> list[Product]:
    return list(
        db.session.execute(
            db.select(Product).where(Product.is_active.is_(True)).order_by(Product.days, Product.id)
        ).scalars()
    )


# -- orders ---------------------------------------------------------------------------


def new_order_no() -> str:
    """``DT`` + UTC time to the second + 12 random hex digits (28 characters)."""
    return "DT" + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(6).upper()


def order_data(order: Order) -> dict[str, Any]:
    return {
        "order_no": order.order_no,
        "product_id": order.product_id,
        "amount_cents": order.amount_cents,
        "currency": order.currency,
        "days": order.days,
        "status": order.status,
        "created_at": format_wire_datetime(order.created_at),
        "paid_at": format_wire_datetime(order.paid_at),
    }


def create_order(user_id: int, product_id: int) -> dict[str, Any]:
    """A pending order for an active product, with what the client needs to pay it."""
    product = db.session.get(Product, product_id)
    if product is None or not product.is_active:
        raise ApiError(OBJECT_NOT_FOUND, "productId: no such product")
    rate_limit.enforce(redis_client(), f"order:{user_id}", current_app.config["ORDER_LIMITS"], "orders")
    order = Order(
        order_no=new_order_no(),
        user_id=user_id,
        product_id=product.id,
        amount_cents=product.price_cents,
        currency=product.currency,
        days=product.days,
        status=ORDER_PENDING,
    )
    transactions.write(lambda: db.session.add(order), what="order")
    return {**order_data(order), "payment": get_provider().checkout(order, product.name)}


def own_order(user_id: int, order_no: str) -> Order:
    """The caller's order; another user's order is answered exactly like a missing one."""
    order = db.session.execute(
        db.select(Order).where(Order.order_no == order_no, Order.user_id == user_id)
    ).scalar_one_or_none()
    if order is None:
        raise ApiError(OBJECT_NOT_FOUND, "orderNo: no such order")
    return order


def orders_page(user_id: int, page: int, page_count: int) -> dict[str, Any]:
    total = db.session.execute(
        db.select(func.count()).select_from(Order).where(Order.user_id == user_id)
    ).scalar_one()
    rows = db.session.execute(
        db.select(Order)
        .where(Order.user_id == user_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .offset((page - 1) * page_count)
        .limit(page_count)
    ).scalars()
    return {"total": total, "list": [order_data(o) for o in rows], "has_next": page * page_count < total}


def vip_status_data(user: User, now: datetime | None = None) -> dict[str, Any]:
    vip = is_vip(user, now)
    return {"is_vip": vip, "vip_expires_at": format_wire_datetime(user.vip_expires_at) if vip else None}


# -- payment callbacks ----------------------------------------------------------------


def _extend_vip(user_id: int, days: int, now: datetime) -> None:
    """Add ``days`` of VIP from max(now, current deadline), holding a row lock on the user."""
    user = db.session.execute(
        db.select(User).where(User.id == user_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if user is None:
        return
    current = user.vip_expires_at
    start = current if current is not None and current > now else now
    user.vip_expires_at = start + timedelta(days=days)
    user.vip_expiry_announced_at = None  # the new deadline's expiry is announced when it comes
    payload = {
        "is_vip": True,
        "vip_expires_at": format_wire_datetime(user.vip_expires_at),
        "reason": "purchase",
    }
    event_producer.append(user_id, "vip", payload)


def apply_payment(notice: PaymentNotice) -> dict[str, Any]:
    """Apply a verified provider callback; repeating it changes nothing and answers the same."""
    order = db.session.execute(db.select(Order).where(Order.order_no == notice.order_no)).scalar_one_or_none()
    if order is None:
        raise ApiError(OBJECT_NOT_FOUND, "order_no: no such order")
    if notice.amount_cents != order.amount_cents or notice.currency != order.currency:
        log.warning(
            "payment mismatch on %s: got %d %s, expected %d %s",
            order.order_no,
            notice.amount_cents,
            notice.currency,
            order.amount_cents,
            order.currency,
        )
        raise ApiError(PAYMENT_MISMATCH)
    order_id, user_id, days = order.id, order.user_id, order.days
    now = utcnow()
    # A payment may land after a failed attempt; nothing ever leaves "paid".
    if notice.status == STATUS_PAID:
        values: dict[str, Any] = {"status": ORDER_PAID, "provider_txn_id": notice.txn_id, "paid_at": now}
        changeable: tuple[str, ...] = (ORDER_PENDING, ORDER_FAILED)
    else:
        values = {"status": ORDER_FAILED}
        changeable = (ORDER_PENDING,)

    def work() -> int:
        changed = cast(  # an UPDATE's result is a CursorResult
            CursorResult[Any],
            db.session.execute(
                db.update(Order)
                .where(Order.id == order_id, Order.status.in_(changeable))
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        if changed == 1 and notice.status == STATUS_PAID and user_id is not None:
            _extend_vip(user_id, days, now)
        return int(changed or 0)

    try:
        changed = transactions.write(work, what="payment")
    except IntegrityError:
        raise ApiError(CONFLICT, "txn_id: already used for another order") from None
    db.session.expire_all()
    final = db.session.get(Order, order_id)
    assert final is not None
    if changed != 1 and final.provider_txn_id not in (None, notice.txn_id):
        log.warning(
            "order %s paid twice (txns %s, %s): refund by hand",
            final.order_no,
            final.provider_txn_id,
            notice.txn_id,
        )
    return {"order_no": final.order_no, "status": final.status}
