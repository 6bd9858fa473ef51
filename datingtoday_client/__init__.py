"""DatingToday's standalone client: request signing, auth classes for ``requests``
and ``httpx``, and a command-line client (``python -m datingtoday_client``).

Invariant: nothing here imports the server (no Flask, SQLAlchemy or models),
and importing this package imports neither ``requests`` nor ``httpx``: the
auth classes live in :mod:`datingtoday_client.auth` and import their HTTP
library only there, so the CLI starts in a few tens of milliseconds.
"""

from datingtoday_client.signing import (
    SIGN_METHOD_HMAC_SHA256,
    SIGN_METHOD_MD5_LEGACY,
    SIGN_METHODS,
    compute_sign,
    sign_params,
)

UNSIGNED_PATHS = frozenset({"/api/health", "/api/time", "/api/openapi.json"})
UNSIGNED_PREFIXES = ("/api/docs", "/metrics")


def is_unsigned(path: str) -> bool:
    """Paths the server answers without a signature (signing them is harmless but needless)."""
    return path in UNSIGNED_PATHS or path.startswith(UNSIGNED_PREFIXES)


__all__ = [
    "SIGN_METHODS",
    "SIGN_METHOD_HMAC_SHA256",
    "SIGN_METHOD_MD5_LEGACY",
    "compute_sign",
    "is_unsigned",
    "sign_params",
]
