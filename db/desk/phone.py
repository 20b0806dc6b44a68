"""E.164 phone numbers from what people and SIP trunks write: '+1 (555) 010-0100', '555-010-0100',
'15550100100', '0044 20 7946 0958'.

A small normaliser, not a numbering-plan database (there is no phonenumbers package here): it
strips punctuation, applies the default country's calling code to national numbers and checks
lengths. It refuses letters, extensions and numbers of impossible length with InvalidInput.
"""

from __future__ import annotations

import re

from db.errors import InvalidInput

# country -> (calling code, trunk prefix dialled before national numbers, national number lengths)
COUNTRIES: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "US": ("1", "", (10,)),
    "CA": ("1", "", (10,)),
    "GB": ("44", "0", (9, 10)),
    "IE": ("353", "0", (7, 8, 9)),
    "FR": ("33", "0", (9,)),
    "DE": ("49", "0", (6, 7, 8, 9, 10, 11)),
    "ES": ("34", "", (9,)),
    "IT": ("39", "", (6, 7, 8, 9, 10, 11)),
    "NL": ("31", "0", (9,)),
    "AU": ("61", "0", (9,)),
    "NZ": ("64", "0", (8, 9, 10)),
    "IN": ("91", "0", (10,)),
    "MX": ("52", "", (10,)),
    "BR": ("55", "0", (10, 11)),
    "JP": ("81", "0", (9, 10)),
}

_ALLOWED = re.compile(r"^\+?[0-9 ()./\-]+$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def normalize_phone(raw: str, *, default_country: str = "US") -> str:
    """The E.164 form of `raw` ('+15550100100'); national numbers get `default_country`'s code."""
    text = (raw or "").strip()
    if not text:
        raise InvalidInput("a phone number is required")
    if text.lower().startswith("tel:"):
        text = text[4:]
    if not _ALLOWED.match(text):
        raise InvalidInput(f"{raw!r} is not a phone number: only digits, spaces and + ( ) - . are allowed")
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        return _checked("+" + digits, raw)
    country = _country(default_country)
    code, trunk, lengths = COUNTRIES[country]
    if code == "1":
        return _nanp(digits, raw)
    for prefix in ("00", "011"):
        if digits.startswith(prefix) and len(digits) - len(prefix) > max(lengths):
            return _checked("+" + digits[len(prefix):], raw)
    if trunk and digits.startswith(trunk):
        digits = digits[len(trunk):]
    if len(digits) not in lengths:
        raise InvalidInput(f"{raw!r} is not a valid {country} phone number (wrong length)")
    return _checked(f"+{code}{digits}", raw)


def is_e164(value: str) -> bool:
    return bool(E164.match(value or ""))


def _country(country: str) -> str:
    key = (country or "").upper()
    if key not in COUNTRIES:
        raise InvalidInput(f"unsupported default country {country!r}: use one of {', '.join(COUNTRIES)}")
    return key


def _nanp(digits: str, raw: str) -> str:
    """North America: 10 digits, or 11 starting with 1; 011 dials out internationally."""
    if digits.startswith("011") and len(digits) > 11:
        return _checked("+" + digits[3:], raw)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise InvalidInput(f"{raw!r} is not a valid North American number: it needs 10 digits")
    return _checked("+1" + digits, raw)


def _checked(number: str, raw: str) -> str:
    if not E164.match(number):
        raise InvalidInput(f"{raw!r} is not a valid phone number (E.164 has 7 to 15 digits)")
    if number.startswith("+1") and (len(number) != 12 or number[2] in "01"):
        raise InvalidInput(f"{raw!r} is not a valid North American number")
    return number
