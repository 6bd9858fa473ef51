"""``flask --app wsgi_app events ...``: the event stream's fleet-wide jobs (run once, not per process).

``prune`` deletes durable events past ``EVENT_RETENTION_DAYS`` (hourly is plenty);
``vip-expiry`` stores the ``vip`` event of every VIP time that ran out (every minute).
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from wsgi_app.services.events import retention
from wsgi_app.services.vip import expiry

events_cli = AppGroup("events", help="The event stream's periodic jobs.")


@events_cli.command("prune")
def prune_command() -> None:
    """Delete durable events older than the retention; print how many."""
    click.echo(f"deleted {retention.prune()} events")


@events_cli.command("vip-expiry")
def vip_expiry_command() -> None:
    """Announce VIP expiries (a vip event each); print how many."""
    click.echo(f"announced {expiry.announce_expired()} VIP expiries")
