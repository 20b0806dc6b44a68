"""Confirmation codes: six characters a caller can read back on the phone, drawn at random and
unique across all appointments (the unique key appointments_confirmation_code_key decides)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from db.errors import Conflict, DomainError

# Easy to say and hear on the phone: no 0/O, 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
UNIQUE_KEY = "appointments_confirmation_code_key"
_ATTEMPTS = 5

T = TypeVar("T")


class InvalidCode(DomainError):
    """What the caller read back cannot be a confirmation code."""


def new_confirmation_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    """'abc-23k' or 'A B C 2 3 K' as read back by a caller -> 'ABC23K'."""
    cleaned = re.sub(r"[\s\-.]", "", code or "").upper()
    if not re.fullmatch(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}", cleaned):
        raise InvalidCode(f"a confirmation code is {CODE_LENGTH} letters and digits, like K7M2XP")
    return cleaned


async def with_fresh_code(insert: Callable[[str], Awaitable[T]]) -> T:
    """Run `insert` with a newly drawn code, drawing again when the code is taken (1 in ~887
    million per stored appointment). `insert` must run in a savepoint of its own."""
    for _ in range(_ATTEMPTS):
        try:
            return await insert(new_confirmation_code())
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != UNIQUE_KEY:
                raise
    raise Conflict("could not draw a free confirmation code; try again")
