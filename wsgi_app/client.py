"""A signing command-line client, for calling the API by hand.

    export DT_APPKEY=... DT_APPSECRET=... [DT_SIGN_METHOD=hmac-sha256] [DT_BASE_URL=http://127.0.0.1:8000]
    python -m wsgi_app.client POST /api/auth/sendsms phone=18922986865
    python -m wsgi_app.client GET /api/user/show userId=1 token=...
    python -m wsgi_app.client POST /api/photo/upload userId=1 token=... photo=@face.jpg

``name=value`` pairs become parameters (query string for GET, form body
otherwise); ``name=@path`` uploads a file. It signs with the same code the
server verifies with (:mod:`wsgi_app.services.signing`) and prints the JSON answer.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256
from wsgi_app.services.signing import sign_params


def encode_multipart(fields: dict[str, str], files: dict[str, Path]) -> tuple[bytes, str]:
    boundary = "dt" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, path in files.items():
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{path.name}"\r\nContent-Type: {ctype}\r\n\r\n'
        )
        parts.append(head.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def build_request(
    method: str,
    path: str,
    params: dict[str, str],
    files: dict[str, Path],
    *,
    base_url: str,
    appkey: str,
    secret: str,
    sign_method: str,
) -> urllib.request.Request:
    signed = sign_params(
        params, appkey=appkey, secret=secret, sign_method=sign_method, http_method=method, path=path
    )
    url = base_url.rstrip("/") + path
    if method == "GET" and not files:
        return urllib.request.Request(f"{url}?{urlencode(signed)}", method=method)
    if files:
        body, ctype = encode_multipart(signed, files)
    else:
        body, ctype = urlencode(signed).encode(), "application/x-www-form-urlencoded"
    return urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsgi_app.client", description=__doc__)
    parser.add_argument("method", type=str.upper)
    parser.add_argument("path")
    parser.add_argument("params", nargs="*", help="name=value, or name=@file to upload")
    args = parser.parse_args(argv)
    appkey, secret = os.environ.get("DT_APPKEY"), os.environ.get("DT_APPSECRET")
    if not appkey or not secret:
        parser.error("set DT_APPKEY and DT_APPSECRET (from `flask --app wsgi_app apps create`)")
    params: dict[str, str] = {}
    files: dict[str, Path] = {}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"expected name=value, got {item!r}")
        if value.startswith("@"):
            files[name] = Path(value[1:])
        else:
            params[name] = value
    request = build_request(
        args.method,
        args.path,
        params,
        files,
        base_url=os.environ.get("DT_BASE_URL", "http://127.0.0.1:8000"),
        appkey=appkey,
        secret=secret,
        sign_method=os.environ.get("DT_SIGN_METHOD", SIGN_METHOD_HMAC_SHA256),
    )
    try:
        with urllib.request.urlopen(request, timeout=70) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    try:
        print(json.dumps(json.loads(payload), ensure_ascii=False, indent=2))
    except ValueError:
        print(payload.decode("utf-8", "replace"))
    return 0 if status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
