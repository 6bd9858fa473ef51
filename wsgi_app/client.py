"""``python -m wsgi_app.client``: an alias of ``python -m datingtoday_client``, kept for old scripts.

The client lives in the standalone :mod:`datingtoday_client` package (no server imports).
"""

from __future__ import annotations

import sys

from datingtoday_client.cli import build_request, encode_multipart, main

__all__ = ["build_request", "encode_multipart", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m wsgi_app.client"))
