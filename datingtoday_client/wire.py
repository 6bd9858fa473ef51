"""Signing a request as it goes on the wire, independent of the HTTP library.

:func:`sign_wire_request` takes what an HTTP library has already prepared
(method, URL, content type, body) and returns the URL and body with
``appkey``, ``timestamp``, ``nonce`` and ``sign`` added. The signature covers
every parameter the server will see, merged as the server merges them (query
first, a form value wins): query pairs, a url-encoded body, and the text
fields of a multipart body (files are not parameters). The signing fields go
into a url-encoded body when there is one, otherwise into the query string.
Unsigned paths (:func:`datingtoday_client.is_unsigned`) pass unchanged.
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from datingtoday_client import is_unsigned
from datingtoday_client.signing import SIGN_METHOD_HMAC_SHA256, SIGNING_PARAM_NAMES, sign_params

FORM_TYPE = "application/x-www-form-urlencoded"
_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.I)
_DISPOSITION_RE = re.compile(rb'Content-Disposition:[^\r\n]*?\bname="([^"]*)"([^\r\n]*)', re.I)


@dataclass(frozen=True)
class Credentials:
    """An application's credentials, and optionally a signed-in user's."""

    appkey: str
    secret: str
    sign_method: str = SIGN_METHOD_HMAC_SHA256
    user_id: int | str | None = None
    token: str | None = None


def multipart_text_fields(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """The non-file fields of a multipart/form-data body, in order."""
    found = _BOUNDARY_RE.search(content_type)
    if not found:
        return []
    fields: list[tuple[str, str]] = []
    for part in body.split(b"--" + found.group(1).encode("latin-1")):
        head, sep, value = part.partition(b"\r\n\r\n")
        disposition = _DISPOSITION_RE.search(head)
        if not sep or disposition is None or b"filename=" in disposition.group(2):
            continue
        if value.endswith(b"\r\n"):
            value = value[:-2]
        fields.append((disposition.group(1).decode("utf-8"), value.decode("utf-8")))
    return fields


def sign_wire_request(
    creds: Credentials, method: str, url: str, content_type: str | None, body: bytes | None
) -> tuple[str, bytes | None]:
    """``(url, body)`` with the signing fields added (and ``userId``/``token`` when the
    credentials carry a user and the request does not name one)."""
    parts = urlsplit(url)
    if is_unsigned(parts.path):
        return url, body
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in SIGNING_PARAM_NAMES
    ]
    ctype = (content_type or "").split(";")[0].strip().lower()
    form: list[tuple[str, str]] = []
    if ctype == FORM_TYPE and body is not None:
        form = [
            (k, v)
            for k, v in parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            if k not in SIGNING_PARAM_NAMES
        ]
    elif ctype == "multipart/form-data" and body:
        form = multipart_text_fields(body, content_type or "")
    merged: dict[str, str] = {}
    for name, value in query:
        merged.setdefault(name, value)
    merged.update({k: v for k, v in reversed(form)})
    extra: dict[str, str] = {}
    if creds.token is not None and "token" not in merged:
        extra["token"] = creds.token
        if creds.user_id is not None and "userId" not in merged:
            extra["userId"] = str(creds.user_id)
    signed = sign_params(
        {**merged, **extra},
        appkey=creds.appkey,
        secret=creds.secret,
        sign_method=creds.sign_method,
        http_method=method,
        path=parts.path,
    )
    added = {k: signed[k] for k in (*extra, *SIGNING_PARAM_NAMES)}
    if ctype == FORM_TYPE and body is not None:
        return urlunsplit(parts._replace(query=urlencode(query))), urlencode([*form, *added.items()]).encode()
    return urlunsplit(parts._replace(query=urlencode([*query, *added.items()]))), body
