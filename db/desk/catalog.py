"""services (what can be booked) and providers (who can be booked, at one location)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

import asyncpg

from db import errors
from db.errors import Conflict, InvalidInput, NotFound, repository


class UnknownService(NotFound):
    pass


class UnknownProvider(NotFound):
    pass


CONSTRAINTS = errors.constraints({
    "services_organization_id_fkey": (NotFound, "no organisation with this id"),
    "services_org_name_key": (Conflict, "this organisation already has a service with this name"),
    "services_name_check": (InvalidInput, "a service needs a name"),
    "services_duration_check": (InvalidInput, "a service lasts between 5 minutes and 12 hours"),
    "services_price_check": (InvalidInput, "a price cannot be negative"),
    "services_currency_check": (InvalidInput, "the currency is a three-letter ISO code such as USD"),
    "providers_location_fkey": (NotFound, "no such location in this organisation"),
    "providers_name_check": (InvalidInput, "a provider needs a name"),
    "provider_services_provider_fkey": (NotFound, "no such provider in this organisation"),
    "provider_services_service_fkey": (NotFound, "no such service in this organisation"),
})


@dataclass(frozen=True)
class Service:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    duration_minutes: int
    price: Decimal | None
    currency: str
    is_active: bool

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Service:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Provider:
    id: uuid.UUID
    organization_id: uuid.UUID
    location_id: uuid.UUID
    name: str
    title: str | None
    is_active: bool
    service_ids: tuple[uuid.UUID, ...]

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Provider:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "service_ids": tuple(record["service_ids"] or ())})


_SERVICE_COLUMNS = ", ".join(f.name for f in fields(Service))

INSERT_SERVICE = f"""
insert into services (id, organization_id, name, description, duration_minutes, price, currency)
values (coalesce($1, gen_random_uuid()), $2, $3, $4, $5, $6, $7)
returning {_SERVICE_COLUMNS}
"""


@repository
async def create_service(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    name: str,
    duration_minutes: int,
    price: Decimal | None = None,
    currency: str = "USD",
    description: str | None = None,
    id: uuid.UUID | None = None,
) -> Service:
    record = await conn.fetchrow(INSERT_SERVICE, id, organization_id, name, description,
                                 duration_minutes, price, currency)
    return Service.from_record(record)


# Callers name services loosely ("a cleaning"): exact name first, then the closest by trigrams.
FIND_SERVICE = f"""
select {_SERVICE_COLUMNS} from services
 where organization_id = $1 and is_active
   and (lower(name) = lower($2) or word_similarity(lower($2), lower(name)) >= 0.5)
 order by lower(name) = lower($2) desc, word_similarity(lower($2), lower(name)) desc, name
 limit 1
"""


@repository
async def find_service(conn: asyncpg.Connection, *, organization_id: uuid.UUID, name: str) -> Service:
    """The active service a caller means by `name`; UnknownService when none is close."""
    record = await conn.fetchrow(FIND_SERVICE, organization_id, name.strip())
    if record is None:
        raise UnknownService(f"we do not offer a service called {name!r}")
    return Service.from_record(record)


LIST_SERVICES = f"""
select {_SERVICE_COLUMNS} from services where organization_id = $1 and (is_active or not $2)
 order by name
"""


@repository
async def list_services(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, active_only: bool = True
) -> list[Service]:
    return [Service.from_record(r) for r in await conn.fetch(LIST_SERVICES, organization_id, active_only)]


INSERT_PROVIDER = """
insert into providers (id, organization_id, location_id, name, title)
values (coalesce($1, gen_random_uuid()), $2, $3, $4, $5)
returning id
"""

INSERT_PROVIDER_SERVICES = """
insert into provider_services (organization_id, provider_id, service_id)
select $1, $2, unnest($3::uuid[])
on conflict do nothing
"""


@repository
async def create_provider(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    location_id: uuid.UUID,
    name: str,
    title: str | None = None,
    service_ids: Sequence[uuid.UUID] = (),
    id: uuid.UUID | None = None,
) -> Provider:
    """A provider at a location and the services they perform (one savepoint: all or nothing)."""
    async with conn.transaction():
        provider_id = await conn.fetchval(INSERT_PROVIDER, id, organization_id, location_id, name, title)
        await conn.execute(INSERT_PROVIDER_SERVICES, organization_id, provider_id, list(service_ids))
    return await get_provider(conn, provider_id=provider_id)


_PROVIDER_SELECT = """
select p.id, p.organization_id, p.location_id, p.name, p.title, p.is_active,
       array(select ps.service_id from provider_services ps
              where ps.provider_id = p.id order by ps.service_id) as service_ids
  from providers p
"""

GET_PROVIDER = _PROVIDER_SELECT + " where p.id = $1"


@repository
async def get_provider(conn: asyncpg.Connection, *, provider_id: uuid.UUID) -> Provider:
    record = await conn.fetchrow(GET_PROVIDER, provider_id)
    if record is None:
        raise UnknownProvider(f"no provider with id {provider_id}")
    return Provider.from_record(record)


LIST_PROVIDERS = _PROVIDER_SELECT + """
 where p.location_id = $1 and (p.is_active or not $3)
   and ($2::uuid is null or exists (select 1 from provider_services ps
                                     where ps.provider_id = p.id and ps.service_id = $2))
 order by p.name, p.id
"""


@repository
async def list_providers(
    conn: asyncpg.Connection,
    *,
    location_id: uuid.UUID,
    service_id: uuid.UUID | None = None,
    active_only: bool = True,
) -> list[Provider]:
    """Providers at a location, optionally only those who perform `service_id`."""
    records = await conn.fetch(LIST_PROVIDERS, location_id, service_id, active_only)
    return [Provider.from_record(r) for r in records]
