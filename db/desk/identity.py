"""Who may read or change an appointment: whoever gives its confirmation code and the name on it.

Caller ID is spoofable, so a phone number proves nothing and finds nothing. The code is the secret
(about 887 million of them); the name is a second factor, matched the way a receptionist would:

- case and accents do not matter ("JOSÉ" is "jose"), nor apostrophes, dots and hyphens
  ("O'Brien" is "OBrien", "Mary-Jane" is "Mary Jane");
- the whole name on file, or its first and last words (middle names left out), in that order,
  with at most one typo in all: one letter wrong, missing, extra, or two neighbours swapped, and
  only in a word of 3 letters or more ("Jame Doe" and "Jane Dow" pass, "Jame Dow" does not; "Li"
  and "Lu" are two names);
- the first name alone, exactly (no typo: one word is less proof than two), and more than an
  initial. "Only when unique": the code already picks exactly one appointment, so the first name
  is checked against that one booking, never searched for among others; a last name alone is
  refused.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

import asyncpg

from db.desk import appointments
from db.desk.appointments import Appointment, AppointmentNotFound
from db.desk.customers import MAX_NAME_LENGTH
from db.errors import DomainError, InvalidInput, repository

MIN_TYPO_LENGTH = 3

NO_MATCH = ("no appointment matches that confirmation code and name; ask the caller to check both "
            "(do not say which one was wrong)")
LOCKED = ("too many tries with a code and name that do not match: do not try again on this call; "
          "offer to transfer the caller to a person")


class IdentityRefused(DomainError):
    """The code and name given do not name one appointment. `reason` (unknown_code,
    name_mismatch, too_many_attempts) is for the call's log; the caller is never told which."""

    def __init__(self, reason: str, message: str = NO_MATCH) -> None:
        super().__init__(message)
        self.reason = reason


class IdentityLocked(IdentityRefused):
    """This call has had its last try (db.desk.call_limits)."""

    def __init__(self, reason: str = "too_many_attempts") -> None:
        super().__init__(reason, LOCKED)


def name_words(name: str) -> list[str]:
    """'José  O'Brien-Smith' -> ['jose', 'obrien', 'smith']: case and accents folded (NFKD)."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.findall(r"[^\W\d_]+", re.sub(r"['’ʼ.]", "", folded))


def name_matches(given: str, on_file: str) -> bool:
    """Whether `given` names the person `on_file` (the rules in this module's docstring)."""
    if len(given or "") > MAX_NAME_LENGTH:
        return False
    said, stored = name_words(given), name_words(on_file)
    if not said or not stored:
        return False
    if len(said) == 1 and len(stored) > 1:
        return len(said[0]) > 1 and said[0] == stored[0]
    forms = [stored, [stored[0], stored[-1]]] if len(stored) > 2 else [stored]
    return any(_close(said, form) for form in forms)


def _close(said: list[str], stored: list[str]) -> bool:
    """Same words in the same order, but for at most one typo in all."""
    if len(said) != len(stored):
        return False
    typos = [(a, b) for a, b in zip(said, stored, strict=True) if a != b]
    return len(typos) <= 1 and all(
        min(len(a), len(b)) >= MIN_TYPO_LENGTH and one_edit_apart(a, b) for a, b in typos)


def one_edit_apart(a: str, b: str) -> bool:
    """At most one edit (substitution, insertion, deletion, or a swap of neighbours) apart.
    Bounded at one, it is a common prefix and suffix around a difference of at most one letter
    (or one swapped pair), which needs no edit-distance library."""
    if abs(len(a) - len(b)) > 1:
        return False
    shortest = min(len(a), len(b))
    start = 0
    while start < shortest and a[start] == b[start]:
        start += 1
    end = 0
    while end < shortest - start and a[-1 - end] == b[-1 - end]:
        end += 1
    rest_a, rest_b = a[start:len(a) - end], b[start:len(b) - end]
    return (len(rest_a) <= 1 and len(rest_b) <= 1) or (
        len(rest_a) == len(rest_b) == 2 and rest_a == rest_b[::-1])


@repository
async def identify(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, code: str, name: str
) -> Appointment:
    """The organisation's appointment with confirmation code `code`, when `name` is the name on
    it. Raises IdentityRefused (unknown_code, name_mismatch); InvalidCode or InvalidInput, before
    any lookup, when the code cannot be one or no name was given (not a try: nothing was tested)."""
    if not name_words(name):
        raise InvalidInput("ask the caller for the name the appointment was booked under")
    try:
        found = await appointments.find_by_code(conn, code=code, organization_id=organization_id)
    except AppointmentNotFound as exc:
        raise IdentityRefused("unknown_code") from exc
    if not name_matches(name, found.customer_name):
        raise IdentityRefused("name_mismatch")
    return found
