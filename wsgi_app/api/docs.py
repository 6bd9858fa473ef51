"""``/api/docs``: the API docs page (Swagger UI) rendering ``/api/openapi.json``, signing in the browser.

Swagger UI's assets come from the ``flask-swagger-ui`` package (served by the app, never a
CDN), so the page works offline; the page itself and ``dt-signing.js`` are this module's
(``docs_page/``). ``validatorUrl`` is off: Swagger UI would otherwise send the document to an
outside validator. A page, not an API operation: the OpenAPI generator skips this blueprint
(``DOCS_BLUEPRINT``).

Invariants of the page (``docs_page/dt-signing.js``): the appkey, appsecret, userId and
token are typed into the page once and kept in that page's memory only (no storage, no
cookie; a reload forgets them); every "Try it out" request to a signed operation gets a fresh
``timestamp``, ``nonce`` and ``sign`` computed in the browser (Web Crypto HMAC-SHA256 for
``hmac-sha256`` applications, a small MD5 for ``md5-legacy``), exactly as
``datingtoday_client/signing.py`` signs; the secret itself is never sent anywhere.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, render_template, send_from_directory

DOCS_PATH = "/api/docs"
DOCS_BLUEPRINT = "api_docs"
PAGE_DIR = Path(__file__).parent / "docs_page"
SWAGGER_DIST = Path(str(files("flask_swagger_ui") / "dist"))
SIGNING_SCRIPT = "dt-signing.js"
SWAGGER_CONFIG = {
    "url": "/api/openapi.json",
    "dom_id": "#swagger-ui",
    "layout": "StandaloneLayout",
    "deepLinking": True,
    "validatorUrl": None,
    "persistAuthorization": False,  # Swagger UI's own Authorize box stores nothing either
    "showMutatedRequest": True,  # the curl line shows the request as signed
}

bp = Blueprint(DOCS_BLUEPRINT, __name__, url_prefix=DOCS_PATH, template_folder="docs_page")


@bp.get("/")
@bp.get("/index.html")
def page() -> str:
    return render_template(
        "api_docs.html", base_url=DOCS_PATH, config_json=json.dumps(SWAGGER_CONFIG), script=SIGNING_SCRIPT
    )


@bp.get(f"/{SIGNING_SCRIPT}")
def signing_script() -> Response:
    return send_from_directory(PAGE_DIR, SIGNING_SCRIPT, mimetype="text/javascript")


@bp.get("/<path:name>")
def swagger_asset(name: str) -> Response:
    return send_from_directory(SWAGGER_DIST, name)
