"""Phone numbers as we store them: E.164 ('+15550100100'), read with Google's libphonenumber (the
`phonenumbers` package).

What people, SIP trunks and PBXs write goes in: national formats ('(212) 555-0188', read in a
default region, the location's country where there is one), international ones ('+44 20 7946 0958',
'011 44 20 7946 0958'), extensions ('... ext. 12', dropped: the columns hold E.164, which has no
extension), tel: and sip: URIs. What nobody could dial back ('anonymous', 'restricted', a PBX
extension such as '100', a short code, garbage) is unknown: None, never an exception. Where a number
is required (a booking's customer phone) `require_phone` raises InvalidPhone, a DomainError.

A number is accepted when its length is possible for its country, whether or not its prefix is
assigned today: the 555-01xx numbers of the demo and the tests are fictional but well formed.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from db.errors import DomainError

DEFAULT_REGION = "US"
# The user part of a tel: or sip: URI ('sip:+12125550188@pbx.example.com', 'tel:+1-212-555-0188').
_URI = re.compile(r"^(?:tel|sips?):([^@;]*)", re.IGNORECASE)
# Longer than any written phone number with its extension: not worth parsing.
_MAX_LENGTH = 64


class InvalidPhone(DomainError):
    """A number we need is not one we could call back."""


# libphonenumber takes ~50 us a number, and the same few numbers come back all call long (each
# webhook about the SIP participant carries them): the answer depends on nothing else.
@functools.lru_cache(maxsize=4096)
def normalize_phone(raw: str | None, *, region: str | None = DEFAULT_REGION) -> str | None:
    """The E.164 form of `raw`, or None when it is not a phone number. National numbers are read
    in `region` (an ISO country code such as 'US' or 'GB'; None: only international ones)."""
    text = (raw or "").strip()
    if uri := _URI.match(text):
        text = uri.group(1)
    if not text or len(text) > _MAX_LENGTH:
        return None
    try:
        number = phonenumbers.parse(text, (region or "").upper() or None)
    except NumberParseException:
        return None
    # Not IS_POSSIBLE_LOCAL_ONLY: a 7-digit North American number cannot be dialled from afar.
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def require_phone(raw: str | None, *, region: str | None = DEFAULT_REGION) -> str:
    """The E.164 form of `raw`; InvalidPhone when it is not a phone number."""
    number = normalize_phone(raw, region=region)
    if number is None:
        raise InvalidPhone("that is not a phone number we could call back: it needs the area code "
                           "and the number")
    return number
