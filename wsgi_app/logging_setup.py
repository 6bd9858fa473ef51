"""Logging for both sides: one redaction of credentials, text or JSON lines.

Invariants:

- :func:`redact` is the ONE place that knows what a credential looks like in a
  log line: the values of ``token``, ``sign``, ``nonce``, ``code`` (the SMS
  code), ``appsecret``/``secret``/``password`` as ``name=value`` (query strings,
  form bodies, ``repr`` of Tornado requests) or as quoted ``"name": "value"``
  (JSON, dict reprs), and ``Bearer`` tokens.
- :func:`install_redaction` wraps the log-record factory, so EVERY record of the
  process (the app's, ``tornado.access``/``tornado.application``/``tornado.general``,
  libraries', whatever handler receives it, pytest's included) has its message
  and its traceback text redacted before any handler sees it. Idempotent.
- :func:`configure_logging` (``tornado_server.py``) installs it, and a root handler
  whose formatter redacts its final output once more; ``LOG_FORMAT=json`` gives
  one JSON object per line, with the access-log fields as keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from typing import Any

REDACTED = "[redacted]"
SENSITIVE_NAMES = ("token", "sign", "nonce", "code", "smscode", "appsecret", "secret", "password")
_NAMES = "|".join(SENSITIVE_NAMES)
_PAIR_RE = re.compile(rf"(?<![A-Za-z0-9_])({_NAMES})=([^&\s'\",;)\]]+)", re.I)
_QUOTED_RE = re.compile(rf"""(["'](?:{_NAMES})["']\s*:\s*)(["'])(?:(?!\2).)*\2""", re.I)
_BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_SMS_LINE_RE = re.compile(r"(sms login code for \S+: )\S+")
ACCESS_FIELDS_ATTR = "access"


def redact(text: str) -> str:
    """``text`` with every credential value replaced by ``[redacted]``."""
    text = _PAIR_RE.sub(rf"\1={REDACTED}", text)
    text = _QUOTED_RE.sub(rf"\1\2{REDACTED}\2", text)
    text = _BEARER_RE.sub(rf"\1{REDACTED}", text)
    return _SMS_LINE_RE.sub(rf"\1{REDACTED}", text)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler's error path
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_redaction() -> None:
    """Redact every log record of this process at creation (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _redact_record(record)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RedactingFormatter(logging.Formatter):
    """The usual one-line text format, redacted once more as a whole."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, access fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, ACCESS_FIELDS_ATTR, None) or {})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
        return formatter
    return RedactingFormatter(TEXT_FORMAT)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Root handler on stderr with the chosen format; redaction for every record."""
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
