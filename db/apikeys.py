"""api_keys: per-organisation keys for the admin API (`python -m db apikeys ...`).

A key is `fdk_<prefix>_<secret>`; only its SHA-256 is stored. Creating a key also creates the
service member it acts as (a users row and a membership whose role follows the scope), so the API
can run every request under RLS as that member. Revoking a key ends the membership too.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from db import errors
from db.errors import InvalidInput, NotFound, repository

SCOPES = ("read", "write", "admin")
# The organisation role a key's service member gets: write edits configurations and knowledge
# (a manager may), admin also reads the organisation's keys (an owner may).
MEMBER_ROLE = {"read": "staff", "write": "manager", "admin": "owner"}
KEY_PREFIX = "fdk_"

CONSTRAINTS = errors.constraints({
    "api_keys_organization_id_fkey": (NotFound, "no organisation with this id"),
    "api_keys_scope_check": (InvalidInput, "a key's scope is read, write or admin"),
})


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    name: str | None
    prefix: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> ApiKey:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    def allows(self, scope: str) -> bool:
        """Scopes are ordered: admin includes write, write includes read."""
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once, never stored


_COLUMNS = ", ".join(f.name for f in fields(ApiKey))


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


ORGANIZATION_BY_SLUG = "select id from organizations where slug = $1"
INSERT_USER = "insert into users (full_name) values ($1) returning id"
INSERT_MEMBER = "insert into organization_members (organization_id, user_id, role) values ($1, $2, $3)"
INSERT_KEY = f"""
insert into api_keys (organization_id, user_id, name, prefix, key_hash, scope)
values ($1, $2, $3, $4, $5, $6)
returning {_COLUMNS}
"""


@repository
async def create_key(
    conn: asyncpg.Connection, *, organization_slug: str, scope: str, name: str | None = None
) -> NewKey:
    """A new key for the organisation, with its service member."""
    if scope not in SCOPES:
        raise InvalidInput(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    async with conn.transaction():
        organization_id = await conn.fetchval(ORGANIZATION_BY_SLUG, organization_slug)
        if organization_id is None:
            raise NotFound(f"no organisation with slug {organization_slug!r}")
        user_id = await conn.fetchval(INSERT_USER, f"API key {prefix}")
        await conn.execute(INSERT_MEMBER, organization_id, user_id, MEMBER_ROLE[scope])
        record = await conn.fetchrow(INSERT_KEY, organization_id, user_id, name, prefix,
                                     hash_key(secret), scope)
    return NewKey(key=ApiKey.from_record(record), secret=secret)


# One round trip: the live key, marked used at most once a minute (a busy key does not write on
# every request).
FIND_BY_HASH = f"""
with found as (select {_COLUMNS} from api_keys where key_hash = $1 and revoked_at is null),
touched as (
    update api_keys set last_used_at = now()
     where id = (select id from found)
       and (last_used_at is null or last_used_at < now() - interval '1 minute')
)
select * from found
"""


@repository
async def find_key(conn: asyncpg.Connection, *, secret: str) -> ApiKey | None:
    """The live key with this secret, or None."""
    record = await conn.fetchrow(FIND_BY_HASH, hash_key(secret))
    return ApiKey.from_record(record) if record else None


LIST_KEYS = f"""
select {_COLUMNS} from api_keys
 where ($1::text is null or organization_id = (select id from organizations where slug = $1))
 order by created_at, id
"""


@repository
async def list_keys(conn: asyncpg.Connection, *, organization_slug: str | None = None) -> list[ApiKey]:
    """Keys (revoked ones included, marked), oldest first; of one organisation when given."""
    return [ApiKey.from_record(r) for r in await conn.fetch(LIST_KEYS, organization_slug)]


REVOKE_KEY = f"""
update api_keys set revoked_at = coalesce(revoked_at, now())
 where (id::text = $1 or prefix = $1)
returning {_COLUMNS}
"""
END_MEMBERSHIP = "delete from organization_members where user_id = $1"


@repository
async def revoke_key(conn: asyncpg.Connection, *, key: str) -> ApiKey:
    """Revoke a key by id or prefix; its service member leaves the organisation."""
    async with conn.transaction():
        records = await conn.fetch(REVOKE_KEY, key)
        if not records:
            raise NotFound(f"no API key with id or prefix {key!r}")
        if len(records) > 1:
            raise InvalidInput(f"{key!r} names several keys: use the id")
        revoked = ApiKey.from_record(records[0])
        await conn.execute(END_MEMBERSHIP, revoked.user_id)
    return revoked
