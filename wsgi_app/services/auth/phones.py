"""Phone numbers: one canonical form, and only numbers that can receive a personal SMS.

Invariants:
- Every number is parsed with ``phonenumbers`` (Google's libphonenumber
  metadata); a number without ``+`` is a mainland China number, as in the
  original API. Limits, SMS codes and the gateway use the E.164 form, so
  ``13540760219`` and ``+8613540760219`` are one phone with one allowance.
- Only mobile numbers (``MOBILE`` / ``FIXED_LINE_OR_MOBILE``) of a country in
  ``SMS_ALLOWED_REGIONS`` are accepted: premium-rate, shared-cost, satellite,
  pager, VoIP and unknown ranges cost money and reach no one (SMS pumping).
- An account is keyed by :attr:`Phone.account_key`: the 11 national digits for
  +86 (how the original API stored them, so existing users keep their account),
  E.164 for every other country. Accounts stored under the other spelling
  before this rule are still found (:func:`account_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from wsgi_app.errors import PARAM_INVALID, ApiError

DEFAULT_REGION = "CN"
CHINA_COUNTRY_CODE = 86
SMS_CAPABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class Phone:
    e164: str
    region: str
    account_key: str


def parse_phone(raw: str, allowed_regions: Sequence[str]) -> Phone:
    """The canonical phone, or 300 naming why the number is refused."""
    try:
        number = phonenumbers.parse(raw.strip(), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ApiError(PARAM_INVALID, "phone: not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ApiError(PARAM_INVALID, "phone: not a valid phone number")
    region = phonenumbers.region_code_for_number(number) or ""
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:  # satellite and global services: never
        raise ApiError(PARAM_INVALID, "phone: satellite and global-service numbers are not accepted")
    if region not in allowed_regions:
        raise ApiError(PARAM_INVALID, "phone: numbers of this country are not accepted")
    if phonenumbers.number_type(number) not in SMS_CAPABLE_TYPES:
        raise ApiError(PARAM_INVALID, "phone: not a mobile number")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if number.country_code == CHINA_COUNTRY_CODE:
        account_key = phonenumbers.national_significant_number(number)
    else:
        account_key = e164
    return Phone(e164, region, account_key)


def account_keys(phone: Phone) -> list[str]:
    """Every spelling an existing account of this phone may be stored under, preferred first."""
    return [phone.account_key] if phone.account_key == phone.e164 else [phone.account_key, phone.e164]


def canonical_or_raw(raw: str) -> str:
    """E.164 for anything parseable (any country), else ``raw``: for lookups in test gateways."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(raw, DEFAULT_REGION), PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return raw
