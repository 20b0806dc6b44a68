"""The redactor: personal data in free text replaced by typed placeholders.

What it finds, in this order (an earlier kind's placeholder is not looked at again):
dates of birth ([DOB]: a full date with a year from 1900 to last year, numeric or with the
month's name; an appointment date is this year or later), e-mail addresses ([EMAIL]), social
security numbers ([SSN]: 123-45-6789), card numbers ([CARD]: 13 to 19 digits, spaces or dashes
allowed, passing Luhn's check), phone numbers ([PHONE], through `phonenumbers`' matcher in the
given region), and numbers spoken as words ("six four six five five five ..."; seven or more
digits: [CARD] when Luhn-valid of a card's length, [SSN] for nine, else [PHONE]).

A Redaction keeps which kinds were removed, never the values. Pure: no database, no clock but
the year given (or today's)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers

PHONE, EMAIL, CARD, SSN, DOB = "PHONE", "EMAIL", "CARD", "SSN", "DOB"
KINDS = (DOB, EMAIL, SSN, CARD, PHONE)

DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3",
               "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|"
           "december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_NUMERIC_DATE = re.compile(
    r"(?<!\d)(?:\d{1,2}[/.-]\d{1,2}[/.-](?P<y1>(?:19|20)\d{2})|(?P<y2>(?:19|20)\d{2})-\d{1,2}-\d{1,2})(?!\d)")
_WORDY_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?P<y1>(?:19|20)\d{{2}})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\.?,?\s+(?P<y2>(?:19|20)\d{{2}}))\b",
    re.IGNORECASE)
_WORD = "|".join(sorted(DIGIT_WORDS, key=len, reverse=True)) + "|double|triple"
_SPOKEN = re.compile(rf"\b(?:{_WORD})(?:[\s,.-]+(?:{_WORD}))+\b", re.IGNORECASE)
_REPEAT = {"double": 2, "triple": 3}


@dataclass(frozen=True)
class Redaction:
    text: str
    kinds: frozenset[str]


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def spoken_digits(words: str) -> str:
    """"six four six double five" -> "64655"."""
    digits, repeat = [], 1
    for word in re.split(r"[\s,.-]+", words.lower()):
        if word in _REPEAT:
            repeat = _REPEAT[word]
        elif word in DIGIT_WORDS:
            digits.append(DIGIT_WORDS[word] * repeat)
            repeat = 1
    return "".join(digits)


def _number_kind(digits: str) -> str | None:
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return CARD
    if len(digits) == 9:
        return SSN
    if len(digits) >= 7:
        return PHONE
    return None


class Redactor:
    """Callable on a string or any JSON value (dicts and lists are walked, keys kept)."""

    def __init__(self, *, region: str = "US", this_year: int | None = None) -> None:
        self.region = region
        self.this_year = this_year or date.today().year

    def __call__(self, text: str) -> Redaction:
        found: set[str] = set()
        for step in (self._dates, self._emails, self._ssns, self._cards, self._phones, self._spoken):
            text = step(text, found)
        return Redaction(text, frozenset(found))

    def value(self, value: Any) -> tuple[Any, frozenset[str]]:
        """A JSON value with every string in it redacted, and the kinds removed."""
        found: set[str] = set()

        def walk(item: Any) -> Any:
            if isinstance(item, str):
                result = self(item)
                found.update(result.kinds)
                return result.text
            if isinstance(item, dict):
                return {key: walk(inner) for key, inner in item.items()}
            if isinstance(item, list | tuple):
                return [walk(inner) for inner in item]
            return item

        return walk(value), frozenset(found)

    # -- the steps: each replaces what it finds and notes the kind -------------------------

    @staticmethod
    def _sub(pattern: re.Pattern, text: str, found: set[str],
             kind_of: Callable[[re.Match], str | None]) -> str:
        def replace(match: re.Match) -> str:
            kind = kind_of(match)
            if kind is None:
                return match.group(0)
            found.add(kind)
            return f"[{kind}]"
        return pattern.sub(replace, text)

    def _dates(self, text: str, found: set[str]) -> str:
        def birth(match: re.Match) -> str | None:
            year = int(match.group("y1") or match.group("y2"))
            return DOB if 1900 <= year < self.this_year else None
        text = self._sub(_NUMERIC_DATE, text, found, birth)
        return self._sub(_WORDY_DATE, text, found, birth)

    def _emails(self, text: str, found: set[str]) -> str:
        return self._sub(_EMAIL, text, found, lambda m: EMAIL)

    def _ssns(self, text: str, found: set[str]) -> str:
        return self._sub(_SSN, text, found, lambda m: SSN)

    def _cards(self, text: str, found: set[str]) -> str:
        return self._sub(_CARD, text, found,
                         lambda m: CARD if luhn_valid(re.sub(r"\D", "", m.group(0))) else None)

    def _phones(self, text: str, found: set[str]) -> str:
        if not any(char.isdigit() for char in text):
            return text
        pieces, last = [], 0
        for match in phonenumbers.PhoneNumberMatcher(text, self.region,
                                                     leniency=phonenumbers.Leniency.POSSIBLE):
            pieces += [text[last:match.start], f"[{PHONE}]"]
            last = match.end
            found.add(PHONE)
        return "".join(pieces) + text[last:] if pieces else text

    def _spoken(self, text: str, found: set[str]) -> str:
        return self._sub(_SPOKEN, text, found, lambda m: _number_kind(spoken_digits(m.group(0))))
