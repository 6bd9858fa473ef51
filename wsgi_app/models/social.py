"""Profile extras and social graph: photos, labels, visits, blocks, reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.models.types import Identifier
from wsgi_app.timeutil import utcnow


class Photo(Model):
    """One of a user's photos; several per user, ordered by ``position``."""

    __tablename__ = "photos"
    __table_args__ = (Index("ix_photos_user_position", "user_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    filename: Mapped[str] = mapped_column(Identifier(64), unique=True, nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Label(Model):
    """An entry of the label catalogue (e.g. hobbies, personality)."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False, default="general")


class UserLabel(Model):
    __tablename__ = "user_labels"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)


class Visit(Model):
    """Who viewed whom: one row per (visitor, visited), folded with the latest time."""

    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("visitor_id", "visited_id", name="uq_visits_pair"),
        Index("ix_visits_visited_last", "visited_id", "last_visited_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    visited_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    visit_count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    first_visited_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_visited_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    is_read: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Block(Model):
    """``blocker_id`` blocked ``blocked_id``; a block hides each from the other."""

    __tablename__ = "blocks"
    __table_args__ = (Index("ix_blocks_blocked", "blocked_id"),)

    blocker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    blocked_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Report(Model):
    """A report of a user, kept for moderation."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reported_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
