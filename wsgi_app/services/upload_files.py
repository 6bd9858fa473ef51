"""Uploaded files on disk (photos, chat media): bounded reads, paths and URLs, and
removal tied to the database transaction.

A row and its file must never disagree: deleting the file before the commit
would leave a row pointing at nothing if the commit fails. Services call
:func:`remove_after_commit` with the paths; the files go when the session
commits, and are kept when it rolls back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import IO

from flask import current_app

from wsgi_app.errors import PARAM_INVALID, PAYLOAD_TOO_LARGE, ApiError
from wsgi_app.transactions import collect_on_commit

log = logging.getLogger("datingtoday.files")


def read_bounded(stream: IO[bytes], limit_bytes: int, what: str) -> bytes:
    """The upload's bytes, refusing more than ``limit_bytes`` without reading it all."""
    content = stream.read(limit_bytes + 1)
    if len(content) > limit_bytes:
        raise ApiError(PAYLOAD_TOO_LARGE, f"{what} larger than {limit_bytes} bytes")
    if not content:
        raise ApiError(PARAM_INVALID, f"{what}: empty file")
    return content


def upload_path(filename: str) -> str:
    return os.path.join(current_app.config["UPLOAD_FOLDER"], filename)


def upload_url(filename: str) -> str:
    prefix: str = current_app.config["UPLOAD_URL_PATH"]
    return prefix.rstrip("/") + "/" + filename


def remove_after_commit(paths: Iterable[str]) -> None:
    """Schedule ``paths`` for removal when the current transaction commits."""
    collect_on_commit("remove-files", paths, remove_files)


def remove_files(paths: Iterable[str]) -> None:
    """Remove files now; a file already gone is fine, other errors are logged, never raised."""
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError:
            log.exception("could not remove %s", path)
