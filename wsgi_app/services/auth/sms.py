"""The SMS gateway interface and the implementation shipped with the service.

A real provider (Aliyun, Twilio, ...) plugs in by implementing
:class:`SmsGateway` and naming it in ``SMS_GATEWAY``. The shipped
:class:`LoggingSmsGateway` logs that a code was sent (never the code: with
``SMS_ECHO_CODE=1`` the ``sendsms`` answer carries it in development); :class:`RecordingSmsGateway` keeps the
messages in memory for tests that read the code the "phone" received.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from flask import Flask, current_app

from wsgi_app.services.auth.phones import canonical_or_raw

log = logging.getLogger("datingtoday.sms")


class SmsGateway(Protocol):
    def send_login_code(self, phone: str, code: str) -> None:
        """Deliver ``code`` to ``phone``; raise on a delivery failure."""


class LoggingSmsGateway:
    def send_login_code(self, phone: str, code: str) -> None:
        masked = phone[:3] + "****" + phone[-4:] if len(phone) > 7 else "****"
        # The code itself never reaches a log (logging_setup.redact would blank it anyway):
        # in development, SMS_ECHO_CODE=1 returns it in the sendsms answer.
        log.info("sms login code for %s not delivered (SMS_GATEWAY=log); SMS_ECHO_CODE=1 returns it", masked)


class RecordingSmsGateway:
    """Keeps what was sent, per phone, newest last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, list[str]] = {}

    def send_login_code(self, phone: str, code: str) -> None:
        with self._lock:
            self.sent.setdefault(phone, []).append(code)

    def last_code(self, phone: str) -> str | None:
        """The last code sent to ``phone`` (any spelling: codes go to the E.164 form)."""
        with self._lock:
            codes = self.sent.get(canonical_or_raw(phone))
            return codes[-1] if codes else None


GATEWAYS = {"log": LoggingSmsGateway, "memory": RecordingSmsGateway}


def init_app(app: Flask) -> None:
    name = app.config["SMS_GATEWAY"]
    if name not in GATEWAYS:
        raise RuntimeError(f"SMS_GATEWAY must be one of {', '.join(GATEWAYS)}, not {name!r}")
    app.extensions["sms_gateway"] = GATEWAYS[name]()


def gateway() -> SmsGateway:
    chosen: SmsGateway = current_app.extensions["sms_gateway"]
    return chosen
