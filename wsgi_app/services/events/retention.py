"""Retention of durable events: delete those older than ``EVENT_RETENTION_SECS`` (7 days default).

:func:`prune` records, per person, the highest id it deletes
(``event_counters.pruned_through``) in the same transaction as the delete, so
a poll whose cursor is below it gets ``EVENTS_RESYNC`` instead of a page with a
silent hole (:mod:`wsgi_app.services.events.stream`). Run it once for the fleet
(``flask --app wsgi_app events prune``, e.g. hourly from cron or a supervisord
program), not in every server process.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, func, update

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.events import Event, EventCounter
from wsgi_app.timeutil import utcnow


def prune() -> int:
    """Delete events past retention; how many."""
    cutoff = utcnow() - timedelta(seconds=int(current_app.config["EVENT_RETENTION_SECS"]))
    newest_old = (
        db.select(func.max(Event.id))
        .where(Event.user_id == EventCounter.user_id, Event.created_at < cutoff)
        .scalar_subquery()
    )
    has_old = (
        db.select(Event.id).where(Event.user_id == EventCounter.user_id, Event.created_at < cutoff).exists()
    )

    def work() -> int:
        db.session.execute(
            update(EventCounter)
            .where(has_old)
            .values(pruned_through=func.coalesce(newest_old, EventCounter.pruned_through))
            .execution_options(synchronize_session=False)
        )
        result = cast(
            CursorResult[Any],
            db.session.execute(
                delete(Event).where(Event.created_at < cutoff).execution_options(synchronize_session=False)
            ),
        )
        return int(result.rowcount or 0)

    return transactions.write(work, what="events prune")
