"""Request signatures of the DatingToday API: the one implementation, for clients and server.

Pure functions over strings, standard library only (no Flask, no database):
the server (``wsgi_app.services.auth.signing``) verifies with these very functions,
so a mismatch can never come from two implementations.

``md5-legacy`` is the original algorithm byte for byte (``docs/signing.md``)::

    msg  = "&".join(sorted(f"{k}={v}" for k, v in params if k not in EXCLUDED))
    sign = md5(f"{msg}{token}{timestamp}{nonce}{appsecret}")

``hmac-sha256`` signs a canonical string with unambiguous delimiters that also
covers the HTTP method and path::

    DT-HMAC-SHA256\\n<METHOD>\\n<path>\\n<percent-encoded sorted k=v pairs joined by &>

where every parameter but ``sign`` is included (so ``appkey``, ``timestamp``,
``nonce``, ``userId`` and ``token`` are all covered), names and values are
percent-encoded with RFC 3986 unreserved characters kept, and pairs are sorted
by encoded name, then encoded value. ``sign`` is the lowercase hex HMAC-SHA256
of that string under the app secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote

SIGN_METHOD_MD5_LEGACY = "md5-legacy"
SIGN_METHOD_HMAC_SHA256 = "hmac-sha256"
SIGN_METHODS = (SIGN_METHOD_MD5_LEGACY, SIGN_METHOD_HMAC_SHA256)
MD5_EXCLUDED = frozenset({"timestamp", "nonce", "appkey", "sign", "token"})
SIGNING_PARAM_NAMES = ("appkey", "timestamp", "nonce", "sign")
HMAC_PREFIX = "DT-HMAC-SHA256"


def md5_legacy_string(params: Mapping[str, str], secret: str) -> str:
    msg = "&".join(sorted(f"{k}={v}" for k, v in params.items() if k not in MD5_EXCLUDED))
    return f"{msg}{params.get('token') or ''}{params.get('timestamp', '')}{params.get('nonce', '')}{secret}"


def md5_legacy_sign(params: Mapping[str, str], secret: str) -> str:
    return hashlib.md5(md5_legacy_string(params, secret).encode("utf-8")).hexdigest()


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def _pct(text: str) -> str:
    """RFC 3986 percent-encoding; text of unreserved characters only (every signed request's
    usual parameters) is returned as it is without ``quote``'s encode and checks."""
    if not text.strip(_UNRESERVED):  # any other character would stop the strip from both ends
        return text
    return quote(text, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Every parameter but ``sign``, names and values percent-encoded (RFC 3986 unreserved
    characters kept), sorted, joined with ``&``: the body of every HMAC string to sign here
    (requests, and the payment provider's callbacks on the server)."""
    pairs = sorted((_pct(k), _pct(v)) for k, v in params.items() if k != "sign")
    return "&".join(f"{k}={v}" for k, v in pairs)


def hmac_sha256_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_string_to_sign(http_method: str, path: str, params: Mapping[str, str]) -> str:
    return f"{HMAC_PREFIX}\n{http_method.upper()}\n{path}\n{canonical_query(params)}"


def hmac_sha256_sign(http_method: str, path: str, params: Mapping[str, str], secret: str) -> str:
    return hmac_sha256_hex(secret, hmac_string_to_sign(http_method, path, params))


def compute_sign(
    sign_method: str, http_method: str, path: str, params: Mapping[str, str], secret: str
) -> str:
    if sign_method == SIGN_METHOD_MD5_LEGACY:
        return md5_legacy_sign(params, secret)
    if sign_method == SIGN_METHOD_HMAC_SHA256:
        return hmac_sha256_sign(http_method, path, params, secret)
    raise ValueError(f"unknown sign method {sign_method!r}")


def signs_match(expected: str, given: str) -> bool:
    """Constant-time comparison (case-insensitive hex)."""
    return hmac.compare_digest(expected.lower().encode("ascii"), given.strip().lower().encode("utf-8"))


def sign_params(
    params: Mapping[str, str],
    *,
    appkey: str,
    secret: str,
    sign_method: str,
    http_method: str,
    path: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """``params`` plus ``appkey``, ``timestamp``, ``nonce`` and ``sign``."""
    signed = {k: str(v) for k, v in params.items()}
    signed["appkey"] = appkey
    signed["timestamp"] = timestamp if timestamp is not None else f"{time.time():.3f}"
    signed["nonce"] = nonce if nonce is not None else secrets.token_hex(12)
    signed.pop("sign", None)
    signed["sign"] = compute_sign(sign_method, http_method, path, signed, secret)
    return signed
