"""The last reported position of a user, already snapped to the privacy grid.

Redis holds the geo index used for queries; this row is the durable copy the
index is rebuilt from after a Redis restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Double, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import db
from wsgi_app.timeutil import utcnow


class UserLocation(db.Model):
    __tablename__ = "user_locations"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    lat: Mapped[float] = mapped_column(Double, nullable=False)
    lng: Mapped[float] = mapped_column(Double, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
