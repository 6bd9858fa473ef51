"""``flask --app wsgi_app ...`` commands: application credentials and housekeeping."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256, SIGN_METHODS
from wsgi_app.services import applications

apps_cli = AppGroup("apps", help="Manage the applications allowed to call the API.")


@apps_cli.command("create")
@click.option("--name", required=True, help="A name to recognise the application by.")
@click.option(
    "--sign-method",
    type=click.Choice(SIGN_METHODS),
    default=SIGN_METHOD_HMAC_SHA256,
    show_default=True,
)
def create_app_command(name: str, sign_method: str) -> None:
    """Create an application and print its credentials as JSON."""
    creds = applications.create_application(name, sign_method)
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


def init_app(app: Flask) -> None:
    from wsgi_app import cli_social, cli_vip

    app.cli.add_command(apps_cli)
    cli_vip.init_app(app)
    cli_social.init_app(app)
