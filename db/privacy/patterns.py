"""One person's phone number and name as Postgres regular expressions (ARE, matched with ~*),
in every form they are written or said: E.164 (+12125550143), national ((212) 555-0143,
212.555.0143, 2125550143), with or without the country code, and spoken as words ("two one two
five five five oh one four three", "double five", "plus one ..."). db.privacy.erasure finds and
replaces them in every column it sweeps."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat

from db.desk.phone import require_phone

_WORDS = {"0": "(?:zero|oh|o)", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
          "6": "six", "7": "seven", "8": "eight", "9": "nine"}
_DIGIT_SEP = "[-. ()/]{0,3}"
_WORD_SEP = "[[:space:],.-]+"
_REPEATS = {2: "double", 3: "triple"}


@dataclass(frozen=True)
class Person:
    """Who is erased: the number as stored (E.164 and the plain forms a writer may have used),
    the patterns that find the number in digits, in words, and the name, and for each a cheap
    test that every match passes (so the expression runs only on the few values that pass it):
    the number's last four digits in a row (how every usual format writes them: E.164,
    national, spaced, dotted; "555-01 43" is not found); the words of its non-zero digits; the
    words of the name (LIKE / ILIKE patterns, which a trigram index answers)."""

    numbers: tuple[str, ...]
    national: str
    digits: str
    words: str
    word_hints: tuple[str, ...]
    name: str | None = None
    name_hints: tuple[str, ...] = ()

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(p for p in (self.digits, self.words, self.name) if p)


def _digits_pattern(country_code: str, national: str) -> str:
    code = _DIGIT_SEP.join(country_code)
    body = _DIGIT_SEP.join(national)
    # Not inside a longer number: no digit right before or after.
    return rf"(?<![0-9])(?:(?:\+|00)?{code}{_DIGIT_SEP})?\(?0?{body}(?![0-9])"


def _compositions(length: int) -> list[list[int]]:
    """The ways a run of one digit may be said: singly, "double", "triple" (3 = 1+2, 2+1, 3...)."""
    if length == 0:
        return [[]]
    return [[part] + rest for part in (1, 2, 3) if part <= length
            for rest in _compositions(length - part)]


def _spoken_run(digit: str, length: int) -> str:
    word = _WORDS[digit]
    ways = []
    for parts in _compositions(length):
        said = [_WORD_SEP.join([word] * part) if part == 1 else f"{_REPEATS[part]}{_WORD_SEP}{word}"
                for part in parts]
        ways.append(_WORD_SEP.join(said))
    ways = sorted(set(ways), key=len, reverse=True)
    return ways[0] if len(ways) == 1 else "(?:" + "|".join(ways) + ")"


def _words_pattern(country_code: str, national: str) -> str:
    runs = [(m.group(0)[0], len(m.group(0))) for m in re.finditer(r"(\d)\1*", national)]
    body = _WORD_SEP.join(_spoken_run(digit, length) for digit, length in runs)
    code = _WORD_SEP.join(_WORDS[d] for d in country_code)
    return rf"\m(?:(?:plus{_WORD_SEP})?{code}{_WORD_SEP})?{body}\M"


def _name_pattern(name: str) -> str:
    words = [w for w in re.split(r"\s+", name.strip()) if w]
    # Our own escaping: ARE reads a backslash before any non-alphanumeric character as that
    # character, which is all re.escape produces for a name.
    return r"\m" + _WORD_SEP.join(re.escape(w) for w in words) + r"\M"


def person(phone: str, *, name: str | None = None, region: str = "US") -> Person:
    """The Person for `phone` (any format a caller or a row may have; InvalidPhone when it is
    not a number) and, when given, `name`."""
    e164 = require_phone(phone, region=region)
    number = phonenumbers.parse(e164)
    code, national = str(number.country_code), phonenumbers.national_significant_number(number)
    forms = {e164, e164.lstrip("+"), national,
             phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
             phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)}
    # Every non-zero digit's word (zero may be said "o": no hint); a number has at least one.
    word_hints = tuple(sorted({f"%{_WORDS[d]}%" for d in national if d != "0"}))
    words = [w for w in (name or "").split() if w]
    return Person(numbers=tuple(sorted(forms)), national=national,
                  digits=_digits_pattern(code, national), words=_words_pattern(code, national),
                  word_hints=word_hints, name=_name_pattern(name) if words else None,
                  name_hints=tuple(f"%{_like_escape(w.lower())}%" for w in words))


def _like_escape(word: str) -> str:
    return re.sub(r"([%_\\])", r"\\\1", word)
