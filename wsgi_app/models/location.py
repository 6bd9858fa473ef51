"""The last reported position of a user, already snapped to the privacy grid.

Stored positions are grid-cell centres, so ``(lat, lng)`` names a cell and the
index on it is what nearby search reads (see ``wsgi_app.services.location.nearby_cells``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Double, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.timeutil import utcnow


class UserLocation(Model):
    __tablename__ = "user_locations"
    __table_args__ = (Index("ix_user_locations_cell", "lat", "lng"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    lat: Mapped[float] = mapped_column(Double, nullable=False)
    lng: Mapped[float] = mapped_column(Double, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
