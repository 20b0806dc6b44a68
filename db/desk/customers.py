"""What an appointment keeps of the person it is for: a name (the phone number is db.desk.phone's).

A pure rule, checked before the database is asked, so a refusal is a DomainError the tools speak.
"""

from __future__ import annotations

from db.errors import DomainError

# Longer than any name a person gives on the phone: more is a model (or a caller) running on.
MAX_NAME_LENGTH = 100


class InvalidName(DomainError):
    pass


def customer_name(raw: str | None) -> str:
    """The name as stored: stripped, present, at most MAX_NAME_LENGTH characters."""
    name = (raw or "").strip()
    if not name:
        raise InvalidName("the customer's name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"a name can be at most {MAX_NAME_LENGTH} characters; ask for a shorter form")
    return name
