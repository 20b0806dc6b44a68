"""locations: branches of an organisation, each with a time zone, a structured address and the
E.164 number callers dial (which routes an inbound SIP call to it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from db import errors
from db.desk.organizations import SLUG_MESSAGE
from db.desk.phone import DEFAULT_REGION, normalize_phone, require_phone
from db.errors import Conflict, InvalidInput, NotFound, repository


class LocationNotFound(NotFound):
    pass


CONSTRAINTS = errors.constraints({
    "locations_organization_id_fkey": (NotFound, "no organisation with this id"),
    "locations_org_slug_key": (Conflict, "this organisation already has a location with this slug"),
    "locations_slug_check": (InvalidInput, SLUG_MESSAGE),
    "locations_name_check": (InvalidInput, "a location needs a name"),
    "locations_timezone_check": (InvalidInput, "unknown time zone: use an IANA name (America/New_York)"),
    "locations_phone_number_check": (InvalidInput, "a location's phone number must be E.164 (+15550100100)"),
    "locations_phone_number_active_key": (
        Conflict, "another active location already answers this phone number"),
    "locations_address_line1_check": (InvalidInput, "an address needs a first line"),
    "locations_city_check": (InvalidInput, "an address needs a city"),
    "locations_country_check": (InvalidInput, "the country is a two-letter ISO code such as US"),
    "locations_region_check": (InvalidInput, "US and Canadian addresses need a two-letter state/province"),
    "locations_postal_code_check": (InvalidInput, "the postal code does not fit the country"),
    "locations_booking_capacity_check": (InvalidInput, "booking capacity cannot be negative"),
})


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    region: str | None = None
    postal_code: str | None = None
    country: str = "US"
    line2: str | None = None

    def normalized(self) -> Address:
        def clean(value: str | None) -> str | None:
            return " ".join((value or "").split()) or None

        region = clean(self.region)
        return Address(
            line1=clean(self.line1) or "", line2=clean(self.line2), city=clean(self.city) or "",
            region=region.upper() if region and len(region) == 2 else region,
            postal_code=(clean(self.postal_code) or "").upper() or None,
            country=(self.country or "").strip().upper(),
        )

    def one_line(self) -> str:
        parts = [self.line1, self.line2, self.city, " ".join(filter(None, [self.region, self.postal_code]))]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Location:
    id: uuid.UUID
    organization_id: uuid.UUID
    slug: str
    name: str
    timezone: str
    phone_number: str | None
    address: Address
    booking_capacity: int
    is_active: bool
    created_at: datetime

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Location:
        address = Address(line1=r["address_line1"], line2=r["address_line2"], city=r["city"],
                          region=r["region"], postal_code=r["postal_code"], country=r["country"])
        return cls(id=r["id"], organization_id=r["organization_id"], slug=r["slug"], name=r["name"],
                   timezone=r["timezone"], phone_number=r["phone_number"], address=address,
                   booking_capacity=r["booking_capacity"], is_active=r["is_active"],
                   created_at=r["created_at"])


_COLUMNS = """id, organization_id, slug, name, timezone, phone_number, address_line1, address_line2,
    city, region, postal_code, country, booking_capacity, is_active, created_at"""

INSERT_LOCATION = f"""
insert into locations (id, organization_id, slug, name, timezone, phone_number, address_line1,
                       address_line2, city, region, postal_code, country, booking_capacity)
values (coalesce($1, gen_random_uuid()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
returning {_COLUMNS}
"""


@repository
async def create_location(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    slug: str,
    name: str,
    timezone: str,
    address: Address,
    phone_number: str | None = None,
    booking_capacity: int = 1,
    id: uuid.UUID | None = None,
) -> Location:
    """Create a branch. The phone number may be in any usual format (a national one is read in the
    address's country); it is stored as E.164."""
    address = address.normalized()
    phone = require_phone(phone_number, region=address.country) if phone_number else None
    record = await conn.fetchrow(
        INSERT_LOCATION, id, organization_id, slug, name, timezone, phone, address.line1,
        address.line2, address.city, address.region, address.postal_code, address.country,
        booking_capacity,
    )
    return Location.from_record(record)


GET_LOCATION = f"select {_COLUMNS} from locations where id = $1"


@repository
async def get_location(conn: asyncpg.Connection, *, location_id: uuid.UUID) -> Location:
    record = await conn.fetchrow(GET_LOCATION, location_id)
    if record is None:
        raise LocationNotFound(f"no location with id {location_id}")
    return Location.from_record(record)


FIND_BY_NUMBER = f"""
select {_COLUMNS} from locations
 where phone_number = $1 and is_active
   and exists (select 1 from organizations o where o.id = organization_id and o.is_active)
"""


@repository
async def find_location_by_number(
    conn: asyncpg.Connection, *, phone_number: str, region: str = DEFAULT_REGION
) -> Location | None:
    """The active location callers reach on `phone_number` (the dialed number of a SIP call); None
    when none does, or when it is not a phone number (a PBX extension, 'anonymous')."""
    number = normalize_phone(phone_number, region=region)
    if number is None:
        return None
    record = await conn.fetchrow(FIND_BY_NUMBER, number)
    return Location.from_record(record) if record else None


LIST_LOCATIONS = f"""
select {_COLUMNS} from locations where organization_id = $1 and (is_active or not $2) order by name
"""


@repository
async def list_locations(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, active_only: bool = True
) -> list[Location]:
    return [Location.from_record(r) for r in await conn.fetch(LIST_LOCATIONS, organization_id, active_only)]
