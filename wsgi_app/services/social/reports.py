"""Reports of users, kept for moderation; rate-limited per reporter.

Reporter and reported are anonymised (set to NULL by the foreign keys) when
either deletes the account; the report itself stays for the moderators.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from wsgi_app import transactions
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.social import Report
from wsgi_app.services import rate_limit
from wsgi_app.services.social.blocks import other_user

REPORT_REASONS = ("spam", "fake_profile", "harassment", "inappropriate_content", "underage", "other")
REPORT_DETAIL_MAX_CHARS = 500
REPORT_STATUS_OPEN = "open"


def report_user(reporter_id: int, peer_id: int, reason: str, detail: str | None) -> dict[str, Any]:
    """Store a report of ``peer_id`` by ``reporter_id``."""
    other_user(reporter_id, peer_id, "report")
    rate_limit.enforce(
        redis_client(), f"report:{reporter_id}", current_app.config["REPORT_LIMITS"], "reports"
    )
    report = Report(
        reporter_id=reporter_id,
        reported_id=peer_id,
        reason=reason,
        detail=(detail or "").strip() or None,
        status=REPORT_STATUS_OPEN,
    )
    transactions.write(lambda: db.session.add(report), what="report")
    return {"report_id": report.id, "status": report.status}
