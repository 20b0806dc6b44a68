"""outbound_endpoints: where an organisation wants its webhooks, each with its own secret.

A secret is `whsec_` and 24 random bytes in base64, the form the Standard Webhooks libraries
take. Rotating keeps the previous secret signing too for a grace period (a delivery then carries
both signatures), so a receiver can switch without refusing anything in between.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import asyncpg

from db import errors
from db.errors import InvalidInput, NotFound, repository
from db.outbound.outbox import EVENT_TYPES

SECRET_PREFIX = "whsec_"
ROTATION_GRACE = timedelta(hours=24)


class EndpointNotFound(NotFound):
    pass


CONSTRAINTS = errors.constraints({
    "outbound_endpoints_url_check": (InvalidInput, "an endpoint URL is http:// or https:// without spaces"),
    "outbound_endpoints_secret_check": (InvalidInput, "a secret is whsec_ and base64"),
    "outbound_endpoints_organization_id_fkey": (NotFound, "no organisation with this id"),
})


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Endpoint:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    def signing_secrets(self, now: datetime) -> list[str]:
        return signing_secrets(self.secret, self.previous_secret, self.previous_secret_expires_at, now)


def signing_secrets(secret: str, previous: str | None, previous_expires_at: datetime | None,
                    now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one during
    its grace period."""
    if previous and previous_expires_at and previous_expires_at > now:
        return [secret, previous]
    return [secret]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _checked_types(event_types: list[str] | None) -> list[str] | None:
    if not event_types:
        return None
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"unknown event type(s) {', '.join(unknown)}: use {', '.join(EVENT_TYPES)}")
    return sorted(set(event_types))


COLUMNS = ", ".join(f.name for f in fields(Endpoint))

INSERT = f"""
insert into outbound_endpoints (organization_id, url, secret, event_types) values ($1, $2, $3, $4)
returning {COLUMNS}
"""


@repository
async def add_endpoint(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, url: str, event_types: list[str] | None = None
) -> Endpoint:
    """A new enabled endpoint with a fresh secret, for `event_types` (None or empty: all)."""
    return Endpoint.from_record(
        await conn.fetchrow(INSERT, organization_id, url, new_secret(), _checked_types(event_types)))


LIST = f"select {COLUMNS} from outbound_endpoints where organization_id = $1 order by created_at, id"
GET = f"select {COLUMNS} from outbound_endpoints where id = $1"


@repository
async def list_endpoints(conn: asyncpg.Connection, *, organization_id: uuid.UUID) -> list[Endpoint]:
    return [Endpoint.from_record(r) for r in await conn.fetch(LIST, organization_id)]


@repository
async def get_endpoint(conn: asyncpg.Connection, *, endpoint_id: uuid.UUID) -> Endpoint:
    record = await conn.fetchrow(GET, endpoint_id)
    if record is None:
        raise EndpointNotFound(f"no endpoint with id {endpoint_id}")
    return Endpoint.from_record(record)


DISABLE = f"""
update outbound_endpoints set enabled = false, disabled_reason = $2, disabled_at = now()
 where id = $1 and ($3::uuid is null or organization_id = $3)
returning {COLUMNS}
"""
# Its pending deliveries will not be sent: they die with the endpoint's reason (and a request
# in flight, whose lease this ends, cannot bring its delivery back).
KILL_PENDING = """
update outbound_deliveries set status = 'dead', locked_until = null, lease = null
 where endpoint_id = $1 and status = 'pending'
"""


@repository
async def disable_endpoint(
    conn: asyncpg.Connection, *, endpoint_id: uuid.UUID, reason: str,
    organization_id: uuid.UUID | None = None,
) -> Endpoint:
    """Stop delivering to an endpoint (by hand, or on 410 Gone): its pending deliveries die.
    With `organization_id`, only an endpoint of that organisation."""
    async with conn.transaction():
        record = await conn.fetchrow(DISABLE, endpoint_id, reason, organization_id)
        if record is None:
            raise EndpointNotFound(f"no endpoint with id {endpoint_id}")
        await conn.execute(KILL_PENDING, endpoint_id)
    return Endpoint.from_record(record)


ROTATE = f"""
update outbound_endpoints set previous_secret = secret, previous_secret_expires_at = now() + $3::interval,
       secret = $2
 where id = $1 and ($4::uuid is null or organization_id = $4)
returning {COLUMNS}
"""


@repository
async def rotate_secret(
    conn: asyncpg.Connection, *, endpoint_id: uuid.UUID, organization_id: uuid.UUID | None = None,
    grace: timedelta = ROTATION_GRACE,
) -> Endpoint:
    """A new secret for an endpoint; the old one keeps signing (alongside) for `grace`."""
    record = await conn.fetchrow(ROTATE, endpoint_id, new_secret(), grace, organization_id)
    if record is None:
        raise EndpointNotFound(f"no endpoint with id {endpoint_id}")
    return Endpoint.from_record(record)
