"""Commands for the profile and social area: ``flask labels seed`` and ``flask seed-demo``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from wsgi_app.services import labels

labels_cli = AppGroup("labels", help="Manage the label catalogue.")


@labels_cli.command("seed")
def seed_labels_command() -> None:
    """Add the standard label catalogue (labels already there are kept; safe to re-run)."""
    added = labels.seed_catalogue()
    click.echo(f"{added} labels added")


def init_app(app: Flask) -> None:
    app.cli.add_command(labels_cli)
