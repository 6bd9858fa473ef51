"""The command-line client: ``python -m datingtoday_client METHOD PATH [name=value ...]``.

    export DT_APPKEY=... DT_APPSECRET=... [DT_SIGN_METHOD=hmac-sha256] [DT_BASE_URL=http://127.0.0.1:8000]
    python -m datingtoday_client POST /api/auth/sendsms phone=13800138000
    python -m datingtoday_client GET /api/user/show userId=1 token=...
    python -m datingtoday_client POST /api/photo/upload userId=1 token=... photo=@face.jpg
    python -m datingtoday_client GET /api/health          # unsigned: no credentials needed
    CODE=$(python -m datingtoday_client POST /api/auth/sendsms phone=13800138000 --field data.code)
    export DT_TOKEN=$(python -m datingtoday_client POST /api/auth/login phone=13800138000 code=$CODE \\
        --field data.token)
    python -m datingtoday_client GET /api/user/show        # as that user (Authorization: Bearer $DT_TOKEN)

``name=value`` pairs become parameters (query string for GET, form body
otherwise); ``name=@path`` uploads a file. ``--field data.token`` prints one value of the
answer instead (repeat it for several, one per line). Prints the JSON answer; exits 0
on a 2xx/3xx, 1 on an API error, 2 when the server cannot be reached (one line
on stderr). Standard library only, so it starts in tens of milliseconds.
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

from datingtoday_client import UNSIGNED_PATHS, is_unsigned
from datingtoday_client.signing import SIGN_METHOD_HMAC_SHA256, SIGN_METHODS, sign_params

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
ENVIRONMENT_HELP = f"""environment:
  DT_APPKEY       the calling application's appkey (from `flask --app wsgi_app apps create`)
  DT_APPSECRET    its appsecret (required with DT_APPKEY for every signed path)
  DT_SIGN_METHOD  hmac-sha256 (default) or md5-legacy: the application's sign method
  DT_BASE_URL     the server, default {DEFAULT_BASE_URL}
  DT_TOKEN        a sign-in token: sent as Authorization: Bearer on signed calls (acts as that user)
Unsigned paths (no credentials needed): {", ".join(sorted(UNSIGNED_PATHS))}."""
TIMEOUT_SECS = 70  # above the server's 50 s long-poll wait


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
    appkey: str | None,
    secret: str | None,
    sign_method: str,
    token: str | None = None,
) -> urllib.request.Request:
    signed = dict(params)
    headers = {"Authorization": f"Bearer {token}"} if token and not is_unsigned(path) else {}
    if appkey and secret and not is_unsigned(path):
        signed = sign_params(
            params, appkey=appkey, secret=secret, sign_method=sign_method, http_method=method, path=path
        )
    url = base_url.rstrip("/") + path
    if method == "GET" and not files:
        return urllib.request.Request(
            f"{url}?{urlencode(signed)}" if signed else url, method=method, headers=headers
        )
    if files:
        body, ctype = encode_multipart(signed, files)
    else:
        body, ctype = urlencode(signed).encode(), "application/x-www-form-urlencoded"
    return urllib.request.Request(url, data=body, method=method, headers={**headers, "Content-Type": ctype})


def _parse_pairs(parser: argparse.ArgumentParser, items: list[str]) -> tuple[dict[str, str], dict[str, Path]]:
    params: dict[str, str] = {}
    files: dict[str, Path] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"expected name=value, got {item!r}")
        if value.startswith("@"):
            files[name] = Path(value[1:])
        else:
            params[name] = value
    return params, files


def main(argv: list[str] | None = None, prog: str = "python -m datingtoday_client") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", type=str.upper)
    parser.add_argument("path")
    parser.add_argument("params", nargs="*", help="name=value, or name=@file to upload")
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="PATH",
        help="print only this value of the answer (a dotted path: data.token); repeatable",
    )
    args = parser.parse_args(argv)
    appkey, secret = os.environ.get("DT_APPKEY"), os.environ.get("DT_APPSECRET")
    if not is_unsigned(args.path) and (not appkey or not secret):
        parser.error("set DT_APPKEY and DT_APPSECRET (from `flask --app wsgi_app apps create`)")
    sign_method = os.environ.get("DT_SIGN_METHOD", SIGN_METHOD_HMAC_SHA256)
    if sign_method not in SIGN_METHODS:
        parser.error(f"DT_SIGN_METHOD must be one of {', '.join(SIGN_METHODS)}")
    params, files = _parse_pairs(parser, args.params)
    base_url = os.environ.get("DT_BASE_URL", DEFAULT_BASE_URL)
    try:
        request = build_request(
            args.method, args.path, params, files,
            base_url=base_url, appkey=appkey, secret=secret, sign_method=sign_method,
            token=os.environ.get("DT_TOKEN"),
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    except (OSError, ValueError) as err:  # refused, DNS, timeout, bad URL, unreadable file
        reason = getattr(err, "reason", None) or err
        print(f"error: cannot reach {base_url}{args.path}: {reason}", file=sys.stderr)
        return 2
    try:
        answer = json.loads(payload)
        text = json.dumps(answer, ensure_ascii=False, indent=2)
    except ValueError:
        answer, text = None, payload.decode("utf-8", "replace")
    if args.field:
        if status >= 400 or answer is None:
            print(f"error: {status}: {text.strip()[:500]}", file=sys.stderr)
            return 1
        try:
            text = "\n".join(_field(answer, path) for path in args.field)
        except LookupError as err:
            print(
                f"error: the answer has no {err.args[0]}: {json.dumps(answer, ensure_ascii=False)}",
                file=sys.stderr,
            )
            return 1
    try:
        print(text, flush=True)
    except BrokenPipeError:  # piped into `head` (or similar) that stopped reading: not an error
        # Python flushes stdout again at exit; pointing it at /dev/null keeps that quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if status < 400 else 1


def _field(answer: object, path: str) -> str:
    """The value at a dotted path (``data.token``, ``data.list.0.msg_id``), as text."""
    value = answer
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise LookupError(path)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
