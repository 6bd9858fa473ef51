"""``GET /metrics``: Prometheus exposition of the whole host, for configured addresses only.

Anyone else gets the 403 envelope (``METRICS_ALLOWED_IPS``: addresses or
networks, default loopback). Not under ``/api``: not part of the public API,
not signed, not in the OpenAPI document.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from wsgi_app import metrics
from wsgi_app.errors import FORBIDDEN, ApiError

bp = Blueprint("metrics", __name__)


@bp.route("/metrics", methods=["GET"])
def exposition() -> Response:
    if not metrics.address_allowed(request.remote_addr, current_app.config["METRICS_ALLOWED_IPS"]):
        raise ApiError(FORBIDDEN, "metrics are served to configured addresses only")
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
