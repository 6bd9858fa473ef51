"""Likes and matches.

``Like(liker_id, liked_id)``: the liker's latest decision about a person
(``like``, ``super``, ``pass``); one row per ordered pair. A ``Match`` row
exists once per side while two people like each other (``user_id`` sees
``peer_id`` in their matches list); unmatching or blocking deletes both rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.timeutil import utcnow


class Like(Model):
    __tablename__ = "likes"
    __table_args__ = (
        Index("ix_likes_liked", "liked_id", "created_at"),
        Index("ix_likes_liker_created", "liker_id", "created_at"),
    )

    liker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    liked_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Match(Model):
    __tablename__ = "matches"
    __table_args__ = (Index("ix_matches_user_created", "user_id", "created_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
