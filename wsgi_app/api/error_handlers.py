"""Every failure of the Flask side becomes the JSON envelope, through one function."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, g, jsonify, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from wsgi_app import errors
from wsgi_app.errors import ApiError, ErrorSpec
from wsgi_app.extensions import db
from wsgi_app.failures import describe_failure, failure_spec
from wsgi_app.http_common import NATIVE_PATH_HINT
from wsgi_app.native_endpoints import NATIVE_PATHS

log = logging.getLogger("datingtoday.errors")

_HTTP_STATUS_SPECS: dict[int, ErrorSpec] = {
    400: errors.BAD_REQUEST,
    403: errors.FORBIDDEN,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    409: errors.CONFLICT,
    413: errors.PAYLOAD_TOO_LARGE,
    415: errors.UNSUPPORTED_MEDIA,
    429: errors.RATE_LIMITED,
}


def error_response(
    spec: ErrorSpec, msg: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    g.error_spec = spec  # named in the access-log line
    response = jsonify(errors.error_body(spec, msg))
    response.status_code = spec.http_status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the database may be the thing that is down
        log.debug("rollback failed", exc_info=True)


def handle_api_error(error: ApiError) -> Response:
    _rollback()
    return error_response(error.spec, error.msg, error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    _rollback()
    spec = _HTTP_STATUS_SPECS.get(error.code or 500, errors.INTERNAL_ERROR)
    hint = None
    if error.code == 404 and request.path in NATIVE_PATHS:  # only reachable under `flask run`
        hint = NATIVE_PATH_HINT.format(path=request.path)
    response = error_response(spec, hint)
    if error.code == 405 and error.response is None:
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def handle_dependency_failure(error: Exception) -> Response:
    """Database and Redis failures, mapped by :func:`wsgi_app.failures.failure_spec` (the
    native side uses the same function). Logs name the MySQL error number."""
    _rollback()
    spec = failure_spec(error)
    if spec is errors.INTERNAL_ERROR:
        return handle_unexpected(error)
    log.error("%s", describe_failure(spec, error))
    return error_response(spec)


def handle_unexpected(error: Exception) -> Response:
    _rollback()
    log.exception("unhandled error (request %s)", g.get("request_id", "-"))
    return error_response(errors.INTERNAL_ERROR)


def remove_session_safely(_error: BaseException | None) -> None:
    """Close the request's session before Flask-SQLAlchemy's own teardown does.

    Closing rolls back; on a connection the database dropped (a restart) that
    raises after the response was made, and the finished answer would be lost
    as a 500. A database error here is logged and the session forgotten.
    """
    try:
        db.session.remove()
    except DBAPIError as error:
        log.warning("closing the session failed (connection lost): %s", error.__class__.__name__)
        db.session.registry.clear()


def register_error_handlers(app: Flask) -> None:
    # Registered after db.init_app, so it runs before Flask-SQLAlchemy's teardown.
    app.teardown_appcontext(remove_session_safely)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_dependency_failure)
    app.register_error_handler(PoolTimeoutError, handle_dependency_failure)  # no pooled connection in time
    app.register_error_handler(redis.exceptions.ConnectionError, handle_dependency_failure)
    app.register_error_handler(redis.exceptions.TimeoutError, handle_dependency_failure)
    app.register_error_handler(Exception, handle_unexpected)
