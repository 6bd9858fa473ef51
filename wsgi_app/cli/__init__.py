"""``flask --app wsgi_app ...`` commands: application credentials (create, list, disable,
enable, rotate-secret) and housekeeping; ``db prepare`` lives in :mod:`.database`."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import TypeVar

import click
from flask import Flask
from flask.cli import AppGroup

from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256, SIGN_METHODS
from wsgi_app.services.auth import application_admin, applications

T = TypeVar("T")

apps_cli = AppGroup("apps", help="Manage the applications allowed to call the API.")


@apps_cli.command("create")
@click.option("--name", required=True, help="A name to recognise the application by.")
@click.option(
    "--sign-method",
    type=click.Choice(SIGN_METHODS),
    default=SIGN_METHOD_HMAC_SHA256,
    show_default=True,
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "env"]),
    default="json",
    show_default=True,
    help="env: `export DT_APPKEY=... DT_APPSECRET=... DT_SIGN_METHOD=...` for the signing client",
)
def create_app_command(name: str, sign_method: str, output_format: str) -> None:
    """Create an application and print its credentials (JSON, or shell exports with --format env)."""
    creds = applications.create_application(name, sign_method)
    if output_format == "env":
        exports = {
            "DT_APPKEY": creds.appkey,
            "DT_APPSECRET": creds.secret,
            "DT_SIGN_METHOD": creds.sign_method,
        }
        click.echo("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in exports.items()))
        return
    click.echo(
        json.dumps(
            {
                "name": name,
                "appkey": creds.appkey,
                "appsecret": creds.secret,
                "sign_method": creds.sign_method,
            }
        )
    )


@apps_cli.command("list")
@click.option("--active-only", is_flag=True, help="Leave out disabled applications.")
def list_apps_command(active_only: bool) -> None:
    """Print every application as one JSON object per line (never the secret)."""
    for row in application_admin.list_applications(include_disabled=not active_only):
        click.echo(json.dumps(row))


@apps_cli.command("disable")
@click.argument("appkey")
def disable_app_command(appkey: str) -> None:
    """Refuse the application's requests from now on (every process within 30 s)."""
    _admin(lambda: application_admin.set_active(appkey, False))
    click.echo(json.dumps({"appkey": appkey, "active": False}))


@apps_cli.command("enable")
@click.argument("appkey")
def enable_app_command(appkey: str) -> None:
    """Accept a disabled application's requests again."""
    _admin(lambda: application_admin.set_active(appkey, True))
    click.echo(json.dumps({"appkey": appkey, "active": True}))


@apps_cli.command("rotate-secret")
@click.argument("appkey")
def rotate_secret_command(appkey: str) -> None:
    """Give the application a new secret and print it; the old one stops working (within 30 s)."""
    creds = _admin(lambda: application_admin.rotate_secret(appkey))
    click.echo(
        json.dumps({"appkey": creds.appkey, "appsecret": creds.secret, "sign_method": creds.sign_method})
    )


def _admin(action: Callable[[], T]) -> T:
    try:
        return action()
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


def init_app(app: Flask) -> None:
    from wsgi_app.cli import database as cli_db
    from wsgi_app.cli import events as cli_events
    from wsgi_app.cli import social as cli_social
    from wsgi_app.cli import vip as cli_vip

    cli_db.init_app()
    app.cli.add_command(apps_cli)
    cli_vip.init_app(app)
    cli_social.init_app(app)
    app.cli.add_command(cli_events.events_cli)
