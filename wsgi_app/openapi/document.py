"""The OpenAPI 3.1 document, generated from the code so it cannot drift from it.

Sources: every Flask rule under ``/api`` and the ``endpoint_spec`` its view
carries (``wsgi_app.api.endpoint``), the native Tornado endpoints
(:data:`wsgi_app.native_endpoints.NATIVE_ENDPOINTS`), and the one error table
(``wsgi_app.errors.all_error_specs()``). Each operation gets its declared
parameters, the signing parameters (``appkey``, ``timestamp``, ``nonce``,
``sign``) unless it is unsigned, ``userId``/``token`` when it acts as a user,
the success envelope around its data schema, and the shared error envelope
(``$ref``) for each HTTP status it can answer with, listing the envelope codes
behind that status in ``x-error-codes``. Recurring objects are ``$ref``s to
``components/schemas`` (:mod:`wsgi_app.openapi.components`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask

from wsgi_app import errors
from wsgi_app.declarations import EndpointSpec
from wsgi_app.errors import ErrorSpec
from wsgi_app.native_endpoints import NATIVE_ENDPOINTS
from wsgi_app.openapi.components import use_components
from wsgi_app.params import Param

OPENAPI_VERSION = "3.1.0"
API_PREFIX = "/api/"
PAGE_ENDPOINT_PREFIX = "api_docs."  # the docs page (wsgi_app.api.docs): a page, not an operation
DOCUMENTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A data schema carrying this key is the whole response body, not wrapped in the envelope.
RAW_BODY_MARKER = "x-raw-body"
# With RAW_BODY_MARKER: the media types of the raw body (default: JSON), e.g. a file download.
MEDIA_TYPES_KEY = "x-media-types"
_FLASK_ARG_RE = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")
_NAMED_GROUP_RE = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")

SIGNING_PARAMS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("appkey", {"type": "string", "minLength": 1, "maxLength": 32}, "application key"),
    (
        "timestamp",
        {"type": "string", "pattern": r"^[0-9]{1,16}(\.[0-9]{1,6})?$"},
        "seconds since the epoch (integer or fractional) or milliseconds; within 300 s of the server",
    ),
    ("nonce", {"type": "string", "minLength": 1, "maxLength": 128}, "unique per appkey within the window"),
    ("sign", {"type": "string", "minLength": 1, "maxLength": 128}, "md5-legacy or hmac-sha256 signature"),
)
USER_PARAMS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("userId", {"type": "integer", "minimum": 1}, "the signed-in user"),
    (
        "token",
        {"type": "string", "minLength": 1, "maxLength": 128},
        "sign-in token (or Authorization: Bearer)",
    ),
)
SIGNING_ERRORS = (
    errors.PARAM_INVALID,
    errors.SIGN_INVALID,
    errors.APPKEY_UNKNOWN,
    errors.TIMESTAMP_OUT_OF_WINDOW,
    errors.NONCE_REPLAYED,
)
SERVER_ERRORS = (
    errors.BAD_REQUEST,
    errors.INTERNAL_ERROR,
    errors.DATABASE_UNAVAILABLE,
    errors.REDIS_UNAVAILABLE,
    errors.SHUTTING_DOWN,
)

APP_SCHEME, USER_SCHEME = "appSignature", "userToken"
SECURITY_SCHEMES: dict[str, Any] = {
    APP_SCHEME: {
        "type": "apiKey",
        "in": "query",
        "name": "sign",
        "description": "appkey, timestamp, nonce and sign, computed over every parameter (docs/signing.md); "
        "datingtoday_client.auth.DatingTodayAuth / DatingTodayHttpxAuth add them to any request",
    },
    USER_SCHEME: {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "the sign-in token with userId (or Authorization: Bearer <token>)",
    },
}
ERROR_REF = "#/components/schemas/ErrorEnvelope"
ERROR_CODES_KEY = "x-error-codes"  # on each error response: the envelope codes it may carry
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["code", "msg"],
    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
}

DESCRIPTION = """JSON API of DatingToday. Generated from the code.

Every response is the envelope `{"code": 0, "msg": "success", "data": {...}}` or
`{"code": <int>, "msg": "<reason>"}` with a real HTTP status. Parameters may be
sent in the query string or a form body on any method (a form value wins);
this document shows them in the query for GET and in a form body otherwise.
Signed operations carry `appkey`, `timestamp`, `nonce` and `sign`
(see docs/signing.md); operations acting as a user also carry `userId` and
`token`. The error codes are listed in `x-error-codes` and below.
"""


def documented_operations(app: Flask) -> Iterator[tuple[str, str, EndpointSpec | None, list[str]]]:
    """``(openapi path, method, spec or None, path argument names)`` for every Flask ``/api`` rule."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX) or rule.endpoint.startswith(PAGE_ENDPOINT_PREFIX):
            continue
        view = app.view_functions.get(rule.endpoint)
        spec = getattr(view, "endpoint_spec", None)
        path = _FLASK_ARG_RE.sub(lambda m: "{" + m.group("name") + "}", rule.rule)
        for method in sorted((rule.methods or set()) & set(DOCUMENTED_METHODS)):
            yield path, method, spec, list(rule.arguments)


def _native_operations() -> Iterator[tuple[str, str, EndpointSpec | None, list[str]]]:
    for pattern, method, spec in NATIVE_ENDPOINTS:
        path = _NAMED_GROUP_RE.sub(lambda m: "{" + m.group("name") + "}", pattern)
        yield path, method.upper(), spec, _NAMED_GROUP_RE.findall(pattern)


def _param_schema(param: Param) -> dict[str, Any]:
    schema = param.openapi_schema()
    if param.description:
        schema["description"] = param.description
    return schema


def _fields(spec: EndpointSpec) -> list[tuple[str, dict[str, Any], bool, str]]:
    """``(name, schema, required, description)`` of every parameter the operation takes."""
    fields = [(p.name, _param_schema(p), p.required, p.description) for p in spec.params]
    declared = {p.name for p in spec.params}
    extra: list[tuple[str, dict[str, Any], str]] = []
    if spec.auth != "none":
        extra.extend(SIGNING_PARAMS)
    if spec.auth == "user":
        extra.extend(USER_PARAMS)
    # Credentials are required by the server but set by the signing client, not by the
    # caller: documented as optional fields plus the operation's ``security`` requirement,
    # so a generated client leaves them to the auth class (datingtoday_client.auth).
    fields.extend(
        (name, dict(schema), False, f"{desc} (set by the signing client; required)")
        for name, schema, desc in extra
        if name not in declared
    )
    return fields


def operation_errors(spec: EndpointSpec, method: str) -> list[ErrorSpec]:
    """Every error the operation can answer with: its own, signing, token, transport, server."""
    found: dict[int, ErrorSpec] = {}
    common: list[ErrorSpec] = list(SERVER_ERRORS)
    if spec.params:
        common.append(errors.PARAM_INVALID)
    if spec.auth != "none":
        common.extend(SIGNING_ERRORS)
    if spec.auth == "user":
        common.append(errors.TOKEN_INVALID)
    if method != "GET":
        common.append(errors.PAYLOAD_TOO_LARGE)
    for err in [*spec.errors, *common]:
        found.setdefault(err.code, err)
    return sorted(found.values(), key=lambda e: e.code)


def _responses(spec: EndpointSpec, method: str) -> dict[str, Any]:
    data_schema = dict(spec.data_schema or {"type": "object"})
    media_types = data_schema.pop(MEDIA_TYPES_KEY, ["application/json"])
    if data_schema.pop(RAW_BODY_MARKER, False):
        success_schema = data_schema
    else:
        success_schema = {
            "type": "object",
            "required": ["code", "msg", "data"],
            "properties": {"code": {"const": 0}, "msg": {"type": "string"}, "data": data_schema},
        }
    responses: dict[str, Any] = {
        "200": {"description": "success", "content": {t: {"schema": success_schema} for t in media_types}}
    }
    by_status: dict[int, list[ErrorSpec]] = {}
    for err in operation_errors(spec, method):
        by_status.setdefault(err.http_status, []).append(err)
    for status, specs in sorted(by_status.items()):
        # One shared error model; the codes this status carries here are listed beside it.
        responses[str(status)] = {
            "description": "; ".join(f"{e.code} {e.name}: {e.message}" for e in specs),
            "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
            ERROR_CODES_KEY: [e.code for e in specs],
        }
    return responses


def build_operation(path: str, method: str, spec: EndpointSpec, path_args: Iterable[str]) -> dict[str, Any]:
    fields = _fields(spec)
    operation: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()}{path}").strip("_"),
        "summary": spec.summary,
        "tags": list(spec.tags) or [path[len(API_PREFIX) :].split("/")[0] or "api"],
        "x-auth": spec.auth,
        "responses": _responses(spec, method),
    }
    if spec.description:
        operation["description"] = spec.description
    if spec.auth != "none":
        operation["security"] = [
            {APP_SCHEME: [], USER_SCHEME: []} if spec.auth == "user" else {APP_SCHEME: []}
        ]
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path_args
    ]
    if method in ("GET", "DELETE"):
        parameters.extend(
            {"name": name, "in": "query", "required": required, "schema": schema, "description": desc}
            for name, schema, required, desc in fields
        )
    elif fields:
        has_file = any(p.type == "file" for p in spec.params)
        media = "multipart/form-data" if has_file else "application/x-www-form-urlencoded"
        body_schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: schema for name, schema, _, _ in fields},
            "additionalProperties": False,
        }
        required = [name for name, _, req, _ in fields if req]
        if required:
            body_schema["required"] = required
        operation["requestBody"] = {
            "required": bool(required),
            "content": {media: {"schema": body_schema}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def error_code_table() -> list[dict[str, Any]]:
    return [
        {"code": e.code, "http_status": e.http_status, "name": e.name, "message": e.message}
        for e in errors.all_error_specs()
    ]


def build_document(app: Flask, server_url: str | None = None) -> dict[str, Any]:
    """The whole document; operations without a spec are listed under ``x-undocumented``."""
    paths: dict[str, dict[str, Any]] = {}
    undocumented: list[str] = []
    for path, method, spec, path_args in [*documented_operations(app), *_native_operations()]:
        if spec is None:
            undocumented.append(f"{method} {path}")
            continue
        paths.setdefault(path, {})[method.lower()] = build_operation(path, method, spec, path_args)
    shared_paths, schemas = use_components(dict(sorted(paths.items())), {"ErrorEnvelope": ERROR_ENVELOPE})
    table = error_code_table()
    rows = "\n".join(f"| {e['code']} | {e['http_status']} | {e['name']} | {e['message']} |" for e in table)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "DatingToday API",
            "version": "1",
            "description": DESCRIPTION + "\n| code | HTTP | name | meaning |\n|---|---|---|---|\n" + rows,
        },
        "paths": shared_paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "x-error-codes": table,
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    if undocumented:
        document["x-undocumented"] = sorted(undocumented)
    return document
