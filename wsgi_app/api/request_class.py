"""The Flask request class: a form body that cannot be parsed is a 300 in the JSON envelope.

Werkzeug drops a broken multipart body silently (the view then sees no
parameters) and answers too many form parts like an oversized body (413).
Here a broken body is 300 "malformed form body", too many parts (or one
non-file field over ``MAX_FORM_MEMORY_SIZE``) is 300 naming the limits, and only a
body over ``MAX_CONTENT_LENGTH`` is 413 (Werkzeug refuses it before parsing, when
the body stream is made). Built on Werkzeug's public ``form_data_parser_class``.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from wsgi_app.errors import PARAM_INVALID, ApiError


class ApiFormDataParser(FormDataParser):
    """Raises on a broken body (not ``silent``), as the envelope's 300."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.silent = False  # raise on a broken body instead of answering an empty form

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, mimetype, content_length, options)
        except RequestEntityTooLarge:
            limit = self.max_content_length
            if limit is not None and (content_length or 0) > limit:
                raise
            raise ApiError(
                PARAM_INVALID,
                f"form: at most {self.max_form_parts} fields, each non-file field at most "
                f"{self.max_form_memory_size} bytes",
            ) from None
        except ValueError:
            raise ApiError(PARAM_INVALID, "malformed form body") from None


class ApiRequest(Request):
    form_data_parser_class = ApiFormDataParser
