"""The figures the integration scenarios measure (written to ``<run dir>/figures.json``)."""

from __future__ import annotations

from typing import Any

FIGURES: dict[str, Any] = {}
