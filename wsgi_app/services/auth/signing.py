"""Request signatures, server side: timestamps and verification.

The signing functions themselves (both methods, the canonical string,
``sign_params``) live once in the standalone :mod:`datingtoday_client.signing`
(no server imports) and are re-exported here, so the server verifies with the
very code clients sign with. See that module and ``docs/signing.md`` for the
two methods (``md5-legacy``, ``hmac-sha256``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from datingtoday_client.signing import (  # noqa: F401  (re-exported for the server's callers)
    HMAC_PREFIX,
    MD5_EXCLUDED,
    SIGN_METHOD_MD5_LEGACY,
    canonical_query,
    compute_sign,
    hmac_sha256_hex,
    hmac_sha256_sign,
    hmac_string_to_sign,
    md5_legacy_sign,
    md5_legacy_string,
    sign_params,
    signs_match,
)
from wsgi_app.errors import PARAM_INVALID, SIGN_INVALID, TIMESTAMP_OUT_OF_WINDOW, ApiError

MILLIS_THRESHOLD = 10**12
MAX_NONCE_LENGTH = 128
MAX_TIMESTAMP_LENGTH = 32


def parse_timestamp(raw: str) -> float:
    """Seconds since the epoch; integer, fractional, or milliseconds above 10^12."""
    if len(raw) > MAX_TIMESTAMP_LENGTH:  # it becomes part of a replay key
        raise ApiError(PARAM_INVALID, "timestamp: must be a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ApiError(PARAM_INVALID, "timestamp: must be a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ApiError(PARAM_INVALID, "timestamp: must be a positive number")
    return value / 1000.0 if value > MILLIS_THRESHOLD else value


def check_timestamp(raw: str, window_secs: int, now: float | None = None) -> float:
    """The timestamp in seconds, once it is within ``window_secs`` of the server's time."""
    now = time.time() if now is None else now
    signed_at = parse_timestamp(raw)
    if abs(signed_at - now) > window_secs:
        raise ApiError(TIMESTAMP_OUT_OF_WINDOW, f"timestamp more than {window_secs}s from server time")
    return signed_at


def replay_key(sign_method: str, timestamp: str, nonce: str) -> str:
    """What the nonce store must refuse to see twice: exactly what the signature covers.

    ``hmac-sha256`` delimits every parameter, so the nonce alone identifies a
    signed request. ``md5-legacy`` concatenates ``timestamp`` and ``nonce``
    without a delimiter, so moving a digit from one to the other keeps the
    signature: its replay key is the concatenation (``docs/signing.md``).
    """
    if sign_method == SIGN_METHOD_MD5_LEGACY:
        return f"{timestamp}{nonce}"
    return nonce


def verify_sign(
    sign_method: str, http_method: str, path: str, params: Mapping[str, str], secret: str
) -> None:
    given = params.get("sign") or ""
    if not given:
        raise ApiError(PARAM_INVALID, "missing parameter: sign")
    expected = compute_sign(sign_method, http_method, path, params, secret)
    if not signs_match(expected, given):
        raise ApiError(SIGN_INVALID)
