"""The OpenAPI document: complete, generated from the code, and matching docs/api.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from wsgi_app import errors
from wsgi_app.api.endpoint import endpoint
from wsgi_app.openapi import document as openapi

DOCS_API = Path(__file__).resolve().parent.parent / "docs" / "api.md"


@pytest.fixture
def document(client) -> dict[str, Any]:
    reply = client.get("/api/openapi.json")
    assert reply.status_code == 200
    return reply.get_json()


def api_rules(app: Flask) -> list[tuple[str, str, Any]]:
    return [
        (method, rule.rule, app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and not rule.endpoint.startswith("api_docs.")  # the docs page
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]


def param_names(operation: dict[str, Any]) -> set[str]:
    names = {p["name"] for p in operation.get("parameters", [])}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        names |= set(media["schema"]["properties"])
    return names


def required_names(operation: dict[str, Any]) -> set[str]:
    names = {p["name"] for p in operation.get("parameters", []) if p["required"]}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        names |= set(media["schema"].get("required", []))
    return names


def test_document_is_served_unsigned_as_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["paths"]
    assert "x-undocumented" not in document


def test_every_registered_api_rule_has_a_spec_and_is_documented(app: Flask, document: dict) -> None:
    rules = api_rules(app)
    assert len(rules) >= 10
    for method, path, view in rules:
        assert hasattr(view, "endpoint_spec"), f"{method} {path} has no @endpoint spec"
        assert method.lower() in document["paths"].get(path, {}), f"{method} {path} missing from OpenAPI"


def test_every_native_endpoint_is_documented(document: dict[str, Any]) -> None:
    from wsgi_app.native_endpoints import NATIVE_ENDPOINTS

    assert NATIVE_ENDPOINTS
    for path, method, spec in NATIVE_ENDPOINTS:
        operation = document["paths"][path][method.lower()]
        assert operation["summary"] == spec.summary


def test_an_endpoint_without_a_spec_is_caught(app: Flask) -> None:
    @app.route("/api/forgotten", methods=["GET"])
    def forgotten() -> str:
        return "{}"

    built = openapi.build_document(app)
    assert built["x-undocumented"] == ["GET /api/forgotten"]


def test_signed_and_user_operations_carry_their_auth_params(app: Flask, document: dict) -> None:
    signing = {"appkey", "timestamp", "nonce", "sign"}
    user = {"userId", "token"}
    for method, path, view in api_rules(app):
        operation = document["paths"][path][method.lower()]
        required = required_names(operation)
        declared = {p.name for p in view.endpoint_spec.params if p.required}
        assert declared <= required, (method, path)
        auth = view.endpoint_spec.auth
        assert operation["x-auth"] == auth
        # Credentials: documented, left to the signing client, demanded by ``security``.
        names = param_names(operation)
        own = {p.name for p in view.endpoint_spec.params}  # e.g. the payment provider's own ``sign``
        assert not ((signing | user) - own) & required, (method, path)
        assert (signing <= names) == (auth != "none"), (method, path)
        assert (user <= names) == (auth == "user"), (method, path)
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        assert (
            schemes == {"none": set(), "app": {"appSignature"}, "user": {"appSignature", "userToken"}}[auth]
        )
    assert param_names(document["paths"]["/api/health"]["get"]) == set()


def test_get_params_go_in_the_query_and_post_params_in_a_form(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/block/list"]["get"]
    assert {p["in"] for p in listing["parameters"]} == {"query"}
    page_count = next(p for p in listing["parameters"] if p["name"] == "pageCount")
    assert page_count["schema"]["maximum"] == 50
    report = document["paths"]["/api/report/add"]["post"]
    body = report["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert body["properties"]["reason"]["enum"] == [
        "spam",
        "fake_profile",
        "harassment",
        "inappropriate_content",
        "underage",
        "other",
    ]
    assert body["properties"]["detail"]["maxLength"] == 500
    assert "detail" not in body["required"]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$ref`` into ``components/schemas`` expanded, at any depth."""
    if "$ref" in schema:
        return resolve(document, document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if isinstance(value, dict):
            out[key] = resolve(document, value)
        elif isinstance(value, list):
            out[key] = [resolve(document, v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def test_responses_wrap_the_data_schema_and_list_error_codes_by_status(app: Flask, document: dict) -> None:
    for method, path, view in api_rules(app):
        spec = view.endpoint_spec
        responses = document["paths"][path][method.lower()]["responses"]
        if not (spec.data_schema or {}).get(openapi.RAW_BODY_MARKER):  # raw bodies: the document, a chat file
            success = responses["200"]["content"]["application/json"]["schema"]
            assert success["properties"]["code"] == {"const": 0}
            assert resolve(document, success["properties"]["data"]) == (
                spec.data_schema or {"type": "object"}
            )
        for status, response in responses.items():
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorEnvelope"
                }
        codes = {
            code
            for status, response in responses.items()
            if status != "200"
            for code in response["x-error-codes"]
        }
        assert {e.code for e in spec.errors} <= codes, (method, path)
        for err in spec.errors:
            assert err.code in responses[str(err.http_status)]["x-error-codes"]
    order = document["paths"]["/api/vip/order"]["post"]["responses"]
    assert set(order["401"]["x-error-codes"]) == {504, 506, 507, 508}
    callback = document["paths"]["/api/payment/callback"]["post"]["responses"]
    assert 515 in callback["401"]["x-error-codes"]
    assert "504" not in str(callback["401"]["description"])


def test_recurring_objects_are_shared_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"Profile", "Message", "ErrorEnvelope", "HotPage", "NearbyPage", "Photo"} <= set(schemas)
    text = json.dumps(document["paths"])
    for name in ("Profile", "Message", "ErrorEnvelope", "Photo"):
        assert f'"#/components/schemas/{name}"' in text, name
    # No inline copy of the profile object is left anywhere in the operations.
    assert json.dumps(schemas["Profile"], sort_keys=True) not in json.dumps(document["paths"], sort_keys=True)
    hot = document["paths"]["/api/user/hot/list"]["get"]["responses"]["200"]["content"]["application/json"]
    assert hot["schema"]["properties"]["data"] == {"$ref": "#/components/schemas/HotPage"}
    assert schemas["HotPage"]["properties"]["list"]["items"] == {"$ref": "#/components/schemas/Profile"}


def test_the_error_code_table_is_the_one_in_the_code(document: dict[str, Any]) -> None:
    table = {row["code"]: row for row in document["x-error-codes"]}
    assert set(table) == {e.code for e in errors.all_error_specs()}
    for spec in errors.all_error_specs():
        assert table[spec.code] == {
            "code": spec.code,
            "http_status": spec.http_status,
            "name": spec.name,
            "message": spec.message,
        }
        assert f"| {spec.code} | {spec.http_status} | {spec.name} |" in document["info"]["description"]


def test_a_new_endpoint_appears_without_changing_the_generator(app: Flask) -> None:
    @app.route("/api/brand/new", methods=["POST"])
    @endpoint(summary="A brand new endpoint", errors=[errors.CONFLICT], data_schema={"type": "object"})
    def brand_new(caller: Any) -> dict[str, Any]:
        return {}

    operation = openapi.build_document(app)["paths"]["/api/brand/new"]["post"]
    assert operation["summary"] == "A brand new endpoint"
    assert {"userId", "token", "sign"} <= param_names(operation)
    assert operation["security"] == [{"appSignature": [], "userToken": []}]
    assert 409 in operation["responses"]["409"]["x-error-codes"]


# -- docs/api.md ----------------------------------------------------------------------


def error_codes_section() -> str:
    text = DOCS_API.read_text(encoding="utf-8")
    match = re.search(r"^## Error codes\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "docs/api.md has no '## Error codes' section"
    return match.group(1)


def test_docs_list_every_error_code_of_the_table() -> None:
    section = error_codes_section()
    rows = {
        int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|", section, re.M)
    }
    for spec in errors.all_error_specs():
        assert spec.code in rows, f"error code {spec.code} ({spec.name}) missing from docs/api.md"
        assert rows[spec.code] == spec.http_status, f"code {spec.code}: wrong HTTP status in docs/api.md"
    assert set(rows) == {e.code for e in errors.all_error_specs()}, "docs/api.md lists codes the code lacks"


def test_docs_mention_my_endpoints() -> None:
    text = DOCS_API.read_text(encoding="utf-8")
    for path in (
        "/api/vip/products",
        "/api/vip/order",
        "/api/vip/orders",
        "/api/vip/status",
        "/api/payment/callback",
        "/api/block/add",
        "/api/block/remove",
        "/api/block/list",
        "/api/report/add",
        "/api/account/delete",
        "/api/openapi.json",
        "/api/auth/sendsms",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/health",
        "/api/time",
        "/api/docs",
    ):
        assert path in text, path
