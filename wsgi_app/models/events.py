"""The durable event stream: one row per event per person, and each person's counter.

``Event(user_id, id)`` is one event for ``user_id``; ``id`` counts per person
(1, 2, 3, ...) and is the poll cursor. ``EventCounter`` holds the last id given
out to a person (``last_id``, locked and raised in the transaction that writes
the event) and the highest id retention deleted (``pruned_through``): a cursor
below it has missed events and must resync (:mod:`wsgi_app.services.events`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.models.types import BigId
from wsgi_app.timeutil import utcnow


class EventCounter(Model):
    __tablename__ = "event_counters"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId, nullable=False, default=0)
    pruned_through: Mapped[int] = mapped_column(BigId, nullable=False, default=0)


class Event(Model):
    """A durable event: ``kind`` (message, read, recall, visit, vip, like, match, unmatch),
    ``ref_id`` (the message of a ``message`` event, read from ``messages`` when polled),
    ``payload`` (JSON text, or None when it is rendered from ``ref_id``)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_created_at", "created_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    ref_id: Mapped[int | None] = mapped_column(BigId)
    payload: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
