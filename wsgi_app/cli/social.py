"""Commands for the profile and social area: ``flask labels seed`` and ``flask seed-demo``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from wsgi_app.demo import seed as demo_seed
from wsgi_app.services.profile import labels

labels_cli = AppGroup("labels", help="Manage the label catalogue.")


@labels_cli.command("seed")
def seed_labels_command() -> None:
    """Add the standard label catalogue (labels already there are kept; safe to re-run)."""
    added = labels.seed_catalogue()
    click.echo(f"{added} labels added")


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; one line per step when piped (click hides its bar then)."""
    if sys.stdout.isatty():
        with click.progressbar(length=total, label=label) as bar:
            yield bar.update
        return
    done, started = 0, time.perf_counter()

    def step(count: int) -> None:
        nonlocal done
        done += count
        rate = done / max(time.perf_counter() - started, 1e-9)
        click.echo(f"{label}: {done}/{total} ({rate:,.0f}/s)")

    yield step


@click.command("seed-demo")
@with_appcontext
@click.option("--users", "user_count", type=click.IntRange(1, 10_000_000), default=1000, show_default=True)
@click.option("--batch-size", type=click.IntRange(100, 50_000), default=5000, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable data.")
def seed_demo_command(user_count: int, batch_size: int, seed: int | None) -> None:
    """Add realistic fake users (profiles, photos, labels, locations, visits, chats) in bulk.

    Demo phones start with 100 (never a real sign-up); re-running adds more users.
    """
    started = time.perf_counter()
    with progress(user_count, "Seeding demo users") as on_batch:
        report = demo_seed.seed_demo(user_count, batch_size=batch_size, seed=seed, on_batch=on_batch)
    elapsed = time.perf_counter() - started
    click.echo(
        f"{report.users} users, {report.photos} photos, {report.user_labels} labels, "
        f"{report.locations} locations, {report.visits} visits, {report.messages} messages, "
        f"{report.contacts} contacts in {elapsed:.1f} s (nearby sees them at once: it reads the rows)"
    )


def init_app(app: Flask) -> None:
    app.cli.add_command(labels_cli)
    app.cli.add_command(seed_demo_command)
