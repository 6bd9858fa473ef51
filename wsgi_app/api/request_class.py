"""The Flask request class: a form body that cannot be parsed is a 300 in the JSON envelope.

Werkzeug drops a broken multipart body silently (the view then sees no
parameters) and answers too many form parts like an oversized body (413).
Here a broken body is 300 "malformed form body", too many parts (or one
non-file field over ``MAX_FORM_MEMORY_SIZE``) is 300 naming the limits, and only a
body over ``MAX_CONTENT_LENGTH`` is 413.
"""

from __future__ import annotations

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from wsgi_app.errors import PARAM_INVALID, ApiError


class ApiRequest(Request):
    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        parser.silent = False  # raise on a broken body instead of answering an empty form
        return parser

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except RequestEntityTooLarge:
            limit = self.max_content_length
            if limit is not None and (self.content_length or 0) > limit:
                raise
            raise ApiError(
                PARAM_INVALID,
                f"form: at most {self.max_form_parts} fields, each non-file field at most "
                f"{self.max_form_memory_size} bytes",
            ) from None
        except ValueError:
            raise ApiError(PARAM_INVALID, "malformed form body") from None
