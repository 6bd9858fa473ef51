"""``/api/docs``: the API docs page (Swagger UI) rendering ``/api/openapi.json``.

The page and its assets come from the ``flask-swagger-ui`` package (served by
the app, never a CDN), so it works offline. ``validatorUrl`` is off: Swagger
UI would otherwise send the document to an outside validator. A page, not an
API operation: the OpenAPI generator skips this blueprint (``DOCS_BLUEPRINT``).
"""

from __future__ import annotations

from flask_swagger_ui import get_swaggerui_blueprint

DOCS_PATH = "/api/docs"
DOCS_BLUEPRINT = "api_docs"

bp = get_swaggerui_blueprint(
    DOCS_PATH,
    "/api/openapi.json",
    config={"app_name": "DatingToday API", "validatorUrl": None, "deepLinking": True},
    blueprint_name=DOCS_BLUEPRINT,
)
