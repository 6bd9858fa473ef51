"""Declared request parameters: parsed and validated once, documented from the same spec.

Each endpoint lists its :class:`Param` objects. The same list validates the
request (Flask decorator and native Tornado handlers alike) and produces the
endpoint's OpenAPI parameters, so the document cannot drift from the code.
Parameters arrive as strings (query or form, first value wins; see
:func:`merge_request_params`). Numbers and patterns accept ASCII digits only
(Python's int(), float() and \\d would take "１８０" and store 180).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler used below)

from wsgi_app.errors import PARAM_INVALID, ApiError, ErrorSpec

_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")
MISSING: Any = object()


def snake_case(name: str) -> str:
    return _CAMEL_RE.sub("_", name).lower()


@dataclass(frozen=True)
class Param:
    """One request parameter: its wire name, type and limits."""

    name: str
    type: str = "string"  # string | integer | number | date | file
    required: bool = False
    default: Any = MISSING
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    description: str = ""
    error: ErrorSpec = PARAM_INVALID
    attr: str = field(default="")

    def __post_init__(self) -> None:
        if not self.attr:
            object.__setattr__(self, "attr", snake_case(self.name))

    def fail(self, reason: str) -> ApiError:
        return ApiError(self.error, f"{self.name}: {reason}")

    def parse(self, raw: str) -> Any:
        """Turn the raw string into a value, or raise :class:`ApiError`."""
        if self.type == "integer":
            if not _INT_RE.fullmatch(raw.strip()):
                raise self.fail("must be an integer")
            value: Any = int(raw)
        elif self.type == "number":
            if not _NUMBER_RE.fullmatch(raw.strip()):
                raise self.fail("must be a number")
            value = float(raw)
            if not math.isfinite(value):
                raise self.fail("must be a finite number")
        elif self.type == "date":
            try:
                value = date.fromisoformat(raw.strip())
            except ValueError:
                raise self.fail("must be a date YYYY-MM-DD") from None
        else:
            value = raw
            if self.min_length is not None and len(value) < self.min_length:
                raise self.fail(f"at least {self.min_length} characters")
            if self.max_length is not None and len(value) > self.max_length:
                raise self.fail(f"at most {self.max_length} characters")
            if self.pattern is not None and not re.fullmatch(self.pattern, value, re.ASCII):
                raise self.fail("bad format")
        if self.minimum is not None and value < self.minimum:
            raise self.fail(f"must be >= {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise self.fail(f"must be <= {self.maximum:g}")
        if self.enum is not None and value not in self.enum:
            raise self.fail("must be one of " + ", ".join(str(v) for v in self.enum))
        return value

    def openapi_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "integer": {"type": "integer"},
            "number": {"type": "number"},
            "date": {"type": "string", "format": "date"},
            "file": {"type": "string", "format": "binary"},
        }.get(self.type, {"type": "string"})
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("minLength", self.min_length),
            ("maxLength", self.max_length),
            ("pattern", self.pattern and f"^(?:{self.pattern})$"),
        ):
            if value is not None:
                schema[key] = int(value) if self.type == "integer" else value
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.default is not MISSING and self.default is not None:
            schema["default"] = self.default
        return schema


def parse_params(specs: Iterable[Param], raw: Mapping[str, str]) -> dict[str, Any]:
    """Validate ``raw`` against ``specs``; returns ``{attr: value}`` for present params.

    An empty string counts as absent. An absent optional parameter appears only
    when it has a default, so callers can tell "not sent" from "sent".
    """
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.type == "file":
            continue
        text = raw.get(spec.name)
        if text is None or text == "":
            if spec.required:
                raise ApiError(spec.error, f"missing parameter: {spec.name}")
            if spec.default is not MISSING:
                values[spec.attr] = spec.default
            continue
        values[spec.attr] = spec.parse(text)
    return values


def merge_request_params(query: Iterable[tuple[str, str]], form: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The contract's merge: first value of each name; a form value beats a query value."""
    merged: dict[str, str] = {}
    for name, value in query:
        merged.setdefault(name, value)
    form_first: dict[str, str] = {}
    for name, value in form:
        form_first.setdefault(name, value)
    merged.update(form_first)
    return merged


def params_from_raw(query_string: bytes, urlencoded_body: bytes = b"") -> dict[str, str]:
    """The parameters of a request from its raw query string and ``x-www-form-urlencoded`` body,
    read exactly as Flask (werkzeug) reads ``request.args`` and ``request.form`` and merged by
    :func:`merge_request_params`. Raises ``UnicodeDecodeError`` where werkzeug would."""

    def items(raw: bytes) -> list[tuple[str, str]]:
        return parse_qsl(raw.decode(), keep_blank_values=True, errors="werkzeug.url_quote")

    return merge_request_params(items(query_string), items(urlencoded_body) if urlencoded_body else ())
