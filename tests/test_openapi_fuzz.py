"""Schemathesis against the real server: every documented operation, signed, conforms.

The document is fetched from the live Tornado server (native handlers and Flask
behind it). A ``before_call`` hook signs each generated request with a real
application's credentials and, for operations that act as a user, fills in the
``userId``/``token`` of a freshly signed-up user (one per request, so deleting
the account or blocking people in one case cannot spoil the next). The
generated values of the signing parameters are thrown away; everything else is
sent as generated. Checks: no 5xx, status code documented, content type and
body conforming to the documented schema (including the envelope ``code``).
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from wsgi_app.extensions import db
from wsgi_app.models.user import User
from wsgi_app.openapi.document import SIGNING_PARAMS, USER_PARAMS
from wsgi_app.services.auth import tokens
from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.auth.signing import sign_params

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
GENERATED_AUTH_NAMES = {name for name, _, _ in (*SIGNING_PARAMS, *USER_PARAMS)}
_phones = itertools.count(15500000000)


def fresh_user(app: Flask) -> dict[str, str]:
    """A new user with a live token, made directly (no SMS limits in the way)."""
    with app.app_context():
        user = User(phone=str(next(_phones)))
        db.session.add(user)
        db.session.flush()
        issued = tokens.issue_token(user.id)
        db.session.commit()
        return {"userId": str(issued.user_id), "token": issued.token}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _envelope_code(response: Any) -> int | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, BaseExceptionGroup):
        text += "\n" + "\n".join(str(sub) for sub in exc.exceptions)
    return text[:3000]


class RequestSigner:
    """The ``before_call`` hook: replaces the generated auth parameters with real ones."""

    def __init__(self, app: Flask, creds: AppCredentials, document: dict[str, Any]) -> None:
        self.app = app
        self.creds = creds
        self.auth_of = {
            (method.upper(), path): op.get("x-auth", "user")
            for path, item in document["paths"].items()
            for method, op in item.items()
        }
        # Uploaded files are not signed parameters: the multipart fields of format "binary".
        self.file_fields = {
            (method.upper(), path): {
                name
                for media in op.get("requestBody", {}).get("content", {}).values()
                for name, prop in media["schema"].get("properties", {}).items()
                if prop.get("format") == "binary"
            }
            for path, item in document["paths"].items()
            for method, op in item.items()
        }

    def __call__(self, context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
        method = case.operation.method.upper()
        auth = self.auth_of[(method, case.operation.path)]
        if auth == "none":
            return
        in_query = method in ("GET", "DELETE")
        source = case.query if in_query else case.body
        generated = dict(source) if isinstance(source, dict) else {}
        files = {k: v for k, v in generated.items() if k in self.file_fields[(method, case.operation.path)]}
        plain = {
            k: _as_text(v)
            for k, v in generated.items()
            if k not in files and k not in GENERATED_AUTH_NAMES and v is not None
        }
        if auth == "user":
            plain.update(fresh_user(self.app))
        signed = sign_params(
            plain,
            appkey=self.creds.appkey,
            secret=self.creds.secret,
            sign_method=self.creds.sign_method,
            http_method=method,
            path=case.formatted_path,
        )
        if in_query:
            case.query = signed
        else:
            case.body = {**signed, **files}


@pytest.fixture
def signing_hook(app: Flask, creds: AppCredentials, live_server) -> Iterator[dict[str, Any]]:
    with urllib.request.urlopen(live_server.base_url + "/api/openapi.json", timeout=10) as response:
        document = json.load(response)
    signer = RequestSigner(app, creds, document)

    def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
        signer(context, case, kwargs)

    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(before_call, "before_call")
    try:
        yield document
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(before_call)


def fuzz_operation(
    operation: Any, base_url: str, codes: list[int | None], answers: list[tuple[int, int | None]]
) -> None:
    """Generate ``MAX_EXAMPLES`` cases for one operation, call and validate each."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=base_url, checks=CHECKS)
        codes.append(_envelope_code(response))
        answers.append((response.status_code, codes[-1]))

    run()


def test_every_documented_operation_conforms_under_fuzzing(
    app: Flask, live_server, signing_hook: dict[str, Any]
) -> None:
    app.config["SMS_PHONE_LIMITS"] = [(10_000, 60)]
    app.config["SMS_IP_LIMITS"] = [(10_000, 3600)]
    app.config["LONGPOLL_TIMEOUT_SECS"] = 0.2  # parked long-polls answer (empty) at once
    schema = schemathesis.openapi.from_dict(signing_hook)  # as served by the live server
    base_url = live_server.base_url
    failures: dict[str, str] = {}
    exercised: list[str] = []
    envelope_codes: dict[str, list[int | None]] = defaultdict(list)
    answers: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        exercised.append(operation.label)

        try:
            fuzz_operation(operation, base_url, envelope_codes[operation.label], answers[operation.label])
        except (Exception, BaseExceptionGroup) as exc:  # collected: one report names every failing operation
            failures[operation.label] = _describe(exc)
    documented = {
        f"{method.upper()} {path}" for path, item in signing_hook["paths"].items() for method in item
    }
    assert set(exercised) == documented
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # Every error answered carries an envelope code the document lists for that status.
    undocumented = []
    for label, pairs in answers.items():
        method, path = label.split(" ", 1)
        responses = signing_hook["paths"][path][method.lower()]["responses"]
        for status, code in pairs:
            if status != 200 and code not in responses[str(status)]["x-error-codes"]:
                undocumented.append((label, status, code))
    assert not undocumented, undocumented
    # The hook signs correctly: no request was refused for its signature, and the
    # operations that need nothing but a signed-in user really succeeded.
    seen = [code for codes in envelope_codes.values() for code in codes]
    assert not {506, 507, 508, 509} & set(seen), {
        k: v for k, v in envelope_codes.items() if {506, 507, 508, 509} & set(v)
    }
    for label in ("GET /api/vip/status", "GET /api/vip/orders", "GET /api/block/list", "GET /api/user/show"):
        assert 0 in envelope_codes[label], (label, envelope_codes[label])
