"""``flask --app wsgi_app products seed`` and ``flask --app wsgi_app payments simulate ORDER_NO``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import click
from flask import Flask
from flask.cli import AppGroup

from wsgi_app.extensions import db
from wsgi_app.models.vip import Order
from wsgi_app.services.vip import payments
from wsgi_app.services.vip import purchases as vip

products_cli = AppGroup("products", help="The VIP product catalogue.")
payments_cli = AppGroup("payments", help="The local fake payment provider.")


@products_cli.command("seed")
def seed_command() -> None:
    """Create the monthly, quarterly and yearly VIP products (idempotent)."""
    added, updated = vip.seed_products()
    click.echo(json.dumps({"added": added, "updated": updated, "products": len(vip.PRODUCT_SEEDS)}))


@payments_cli.command("simulate")
@click.argument("order_no")
@click.option("--status", type=click.Choice(payments.CALLBACK_STATUSES), default=payments.STATUS_PAID)
@click.option("--txn-id", default=None, help="Provider transaction id (default: a random one).")
@click.option(
    "--send",
    "base_url",
    default=None,
    help="POST the callback to this server (e.g. http://127.0.0.1:8000); otherwise only print it.",
)
def simulate_command(order_no: str, status: str, txn_id: str | None, base_url: str | None) -> None:
    """Print (and optionally send) the signed callback the provider would send for ORDER_NO."""
    order = db.session.execute(db.select(Order).where(Order.order_no == order_no)).scalar_one_or_none()
    if order is None:
        raise click.ClickException(f"no order {order_no}")
    params = payments.fake_provider().signed_callback(
        order.order_no, order.amount_cents, order.currency, status=status, txn_id=txn_id
    )
    click.echo(json.dumps(params))
    if base_url is None:
        return
    request = urllib.request.Request(
        base_url.rstrip("/") + payments.CALLBACK_PATH,
        data=urlencode(params).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            click.echo(response.read().decode().strip())
    except urllib.error.HTTPError as err:
        raise click.ClickException(f"HTTP {err.code}: {err.read().decode()}") from None


def init_app(app: Flask) -> None:
    app.cli.add_command(products_cli)
    app.cli.add_command(payments_cli)
