"""Lua scripts run by their SHA1 (``EVALSHA``), the source sent only when Redis lacks it.

``EVAL`` sends the whole source with every call: for the chat send's two scripts
(the rate limit and the latest-message raise) packing and sending that text was
a visible share of the send's CPU, and Redis hashes it on every call. A
:class:`LuaScript` runs ``EVALSHA``; on ``NOSCRIPT`` (a fresh or flushed Redis)
it runs ``EVAL`` once, which also caches the script for the next calls.
Invariant: the result is the same as ``EVAL`` with the same keys and arguments.
Commands go through ``execute_command`` (no per-call argument-deprecation wrapper).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis


class LuaScript:
    """One script: its source and SHA1."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def run(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run it on a client (not a pipeline: see :meth:`queue` and :meth:`run_missing`)."""
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.execute_command("EVAL", self.source, len(keys), *keys, *args)

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue an ``EVALSHA`` on a pipeline; execute it with ``raise_on_error=False`` and
        pass the answer to :meth:`is_missing`."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    @staticmethod
    def is_missing(answer: Any) -> bool:
        return isinstance(answer, redis.exceptions.NoScriptError)
