"""organizations and organization_members: the businesses we answer for and who works for them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from db import errors
from db.errors import Conflict, InvalidInput, NotFound, repository

SLUG_MESSAGE = "a slug is lowercase letters and digits joined by '-'"

CONSTRAINTS = errors.constraints({
    "organizations_slug_key": (Conflict, "an organisation with this slug already exists"),
    "organizations_slug_check": (InvalidInput, SLUG_MESSAGE),
    "organizations_name_check": (InvalidInput, "an organisation needs a name"),
    "organizations_timezone_check": (InvalidInput, "unknown time zone: use an IANA name"),
    "organization_members_role_check": (InvalidInput, "a member's role is owner, manager or staff"),
    "organization_members_user_id_fkey": (NotFound, "no user with this id"),
    "organization_members_organization_id_fkey": (NotFound, "no organisation with this id"),
})


@dataclass(frozen=True)
class Organization:
    id: uuid.UUID
    name: str
    slug: str
    default_timezone: str
    is_active: bool
    created_at: datetime
    redact_pii: bool = False  # db.privacy: redact personal data before it is stored

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Organization:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


_COLUMNS = ", ".join(f.name for f in fields(Organization))

INSERT_ORGANIZATION = f"""
insert into organizations (id, name, slug, default_timezone)
values (coalesce($1, gen_random_uuid()), $2, $3, $4)
returning {_COLUMNS}
"""


@repository
async def create_organization(
    conn: asyncpg.Connection,
    *,
    name: str,
    slug: str,
    default_timezone: str = "UTC",
    id: uuid.UUID | None = None,
) -> Organization:
    record = await conn.fetchrow(INSERT_ORGANIZATION, id, name, slug, default_timezone)
    return Organization.from_record(record)


GET_BY_SLUG = f"select {_COLUMNS} from organizations where slug = $1"
GET_BY_ID = f"select {_COLUMNS} from organizations where id = $1"


@repository
async def get_organization(
    conn: asyncpg.Connection, *, id: uuid.UUID | None = None, slug: str | None = None
) -> Organization | None:
    if (id is None) == (slug is None):
        raise InvalidInput("give exactly one of id or slug")
    record = await conn.fetchrow(GET_BY_ID, id) if id else await conn.fetchrow(GET_BY_SLUG, slug)
    return Organization.from_record(record) if record else None


UPSERT_MEMBER = """
insert into organization_members (organization_id, user_id, role) values ($1, $2, $3)
on conflict (organization_id, user_id) do update set role = excluded.role
"""


@repository
async def add_member(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, user_id: uuid.UUID, role: str = "staff"
) -> None:
    """Make a user a member of an organisation (or change their role)."""
    await conn.execute(UPSERT_MEMBER, organization_id, user_id, role)
