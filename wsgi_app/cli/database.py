"""``flask db prepare`` (create the database if missing, migrate, seed the catalogues) and
one-line errors instead of tracebacks when ``db upgrade`` cannot reach its database.

Invariants: a password in ``DATABASE_URL`` is never printed; ``prepare`` is
idempotent (safe to run on every deploy); only MariaDB/MySQL databases are
created by it (SQLite creates its file on first use, its folder is made here).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from wsgi_app.db_connect import install_connect_listeners

MYSQL_UNKNOWN_DATABASE = 1049
MYSQL_ACCESS_DENIED = 1045
MYSQL_CANNOT_CONNECT = 2003
ONE_LINE_MARK = "_dt_one_line_errors"
WRAPPED_COMMANDS = ("upgrade", "downgrade", "current", "stamp", "check")


def describe_database_error(exc: OperationalError, url_text: str) -> str:
    """One line saying what went wrong and what to do."""
    url = make_url(url_text)
    where = (
        f"{url.host or 'localhost'}:{url.port or 3306}" if url.get_backend_name() == "mysql" else url.database
    )
    number = getattr(exc.orig, "args", [None])[0]
    if number == MYSQL_UNKNOWN_DATABASE:
        return (
            f"database {url.database!r} does not exist on {where}: "
            "run `flask --app wsgi_app db prepare` (creates it, migrates, seeds the catalogues)"
        )
    if number == MYSQL_CANNOT_CONNECT:
        return f"cannot connect to the database server at {where}: is MariaDB running? (DATABASE_URL)"
    if number == MYSQL_ACCESS_DENIED:
        return f"access denied to the database at {where} for user {url.username!r}: check DATABASE_URL"
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else exc.__class__.__name__
    return f"database error on {where}: {reason}"


def one_line_database_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(callback, ONE_LINE_MARK, False):
        return callback

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except OperationalError as exc:
            raise click.ClickException(
                describe_database_error(exc, current_app.config["SQLALCHEMY_DATABASE_URI"])
            ) from None

    setattr(wrapper, ONE_LINE_MARK, True)
    return wrapper


def create_database_if_missing(url_text: str) -> bool:
    """Create the MariaDB/MySQL database named in the URL (utf8mb4); True when it was created."""
    url = make_url(url_text)
    if url.get_backend_name() != "mysql":
        if not url.database or url.database == ":memory:":
            return False
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
        return not os.path.exists(url.database)  # SQLite makes the file as it migrates
    name = url.database or ""
    if not name or "`" in name:
        raise click.ClickException("DATABASE_URL must name a database (e.g. .../datingtoday)")
    server = create_engine(url._replace(database=None), pool_pre_ping=False)  # .set(None) keeps it
    install_connect_listeners(server)
    try:
        with server.connect() as conn:
            exists = conn.execute(text("SHOW DATABASES LIKE :name"), {"name": name}).first() is not None
            if not exists:
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            return not exists
    finally:
        server.dispose()


@click.command("prepare")
@with_appcontext
@one_line_database_errors
def prepare_command() -> None:
    """Create the database if missing, apply every migration, seed VIP products and labels."""
    from flask_migrate import upgrade

    from wsgi_app.services.profile import labels
    from wsgi_app.services.vip import purchases as vip

    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    shown = make_url(url).render_as_string(hide_password=True)
    created = create_database_if_missing(url)
    click.echo(f"database {shown}: {'created' if created else 'exists'}")
    upgrade()
    click.echo("migrations: at head")
    added, updated = vip.seed_products()
    click.echo(f"VIP products: {added} added, {updated} updated")
    click.echo(f"labels: {labels.seed_catalogue()} added")


def init_app() -> None:
    """Add ``prepare`` to Flask-Migrate's ``db`` group; its commands fail in one line."""
    from flask_migrate.cli import db as db_group

    for name in WRAPPED_COMMANDS:
        command = db_group.commands.get(name)
        if command is not None and command.callback is not None:
            command.callback = one_line_database_errors(command.callback)
    db_group.add_command(prepare_command)
