"""DatingToday's Flask application: ``create_app(test_config)`` builds it.

Served in production by ``tornado_server.py`` (through ``tornado.wsgi.WSGIContainer``
on a thread pool, beside the native handlers of ``async_handlers``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Flask is imported in create_app: `python -m wsgi_app.client` stays light
    from flask import Flask

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from flask import Flask

    from wsgi_app import cli, models  # noqa: F401  (models register their tables)
    from wsgi_app.api import register_blueprints
    from wsgi_app.api.error_handlers import register_error_handlers
    from wsgi_app.api.hooks import register_hooks
    from wsgi_app.api.request_class import ApiRequest
    from wsgi_app.config import (
        InsecureConfigError,
        check_production_secrets,
        check_timeout_rule,
        config_from_env,
        instance_path_from_env,
        running_flask_cli,
    )
    from wsgi_app.database import tune_engine
    from wsgi_app.extensions import db, migrate, redis_store
    from wsgi_app.logging_setup import install_redaction
    from wsgi_app.services.auth import sms

    install_redaction()  # no token, sign, nonce or SMS code in any log record of this process
    app = Flask(__name__, instance_path=instance_path_from_env(), instance_relative_config=True)
    app.request_class = ApiRequest
    app.config.from_mapping(config_from_env(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    try:
        check_production_secrets(app.config)
        check_timeout_rule(app.config)
    except InsecureConfigError as err:  # TimeoutRuleError included
        if running_flask_cli():  # `flask --app wsgi_app ...`: one line, no traceback
            print(f"Error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
    os.makedirs(app.instance_path, exist_ok=True)
    os.makedirs(app.config["UPLOAD_FOLDER"], exist_ok=True)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            tune_engine(engine)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    redis_store.init_app(app)
    sms.init_app(app)
    register_hooks(app)
    register_error_handlers(app)
    register_blueprints(app)
    cli.init_app(app)
    if app.config["SERVE_UPLOADS"]:
        from werkzeug.middleware.shared_data import SharedDataMiddleware

        # Embedded default: the app serves uploaded photos itself (nginx does it in production).
        app.wsgi_app = SharedDataMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, {app.config["UPLOAD_URL_PATH"]: app.config["UPLOAD_FOLDER"]}, cache_timeout=86400
        )
    from wsgi_app.http_common import with_security_headers

    app.wsgi_app = with_security_headers(app.wsgi_app)  # type: ignore[method-assign]
    return app
