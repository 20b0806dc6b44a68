"""Whose calls are being analysed: each call's organisation, location, and whether that
organisation has its personal data redacted before storing (organizations.redact_pii), with the
country whose number formats the redactor looks for. Read where analyses are completed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from db.errors import repository


@dataclass(frozen=True)
class CallOwner:
    call_id: uuid.UUID
    session_id: str
    organization_id: uuid.UUID | None
    location_id: uuid.UUID | None
    redact_pii: bool
    country: str


OWNERS = """
select c.id as call_id, c.session_id, c.organization_id, c.location_id,
       coalesce(o.redact_pii, false) as redact_pii, coalesce(l.country, 'US') as country
  from voice_calls c
  left join organizations o on o.id = c.organization_id
  left join locations l on l.id = c.location_id
 where c.id = any($1::uuid[])
"""


@repository
async def owners(conn: asyncpg.Connection, *, call_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CallOwner]:
    """The owner of each call that exists, by call id."""
    return {r["call_id"]: CallOwner(**dict(r)) for r in await conn.fetch(OWNERS, list(call_ids))}
