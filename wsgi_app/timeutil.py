"""Time helpers: the service stores naive UTC datetimes and speaks UTC on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC now, the form stored in every DateTime column."""
    return datetime.now(UTC).replace(tzinfo=None)


def epoch_seconds() -> float:
    return time.time()


def format_wire_datetime(value: datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, the contract's format."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None
