"""When can a service be booked: the rules, the checks a booking must pass, and slot search.

A slot is free when it lies inside one opening interval of its local day, starts no sooner than
the lead time and no later than max_days_ahead, and its provider has no confirmed appointment
within `buffer_minutes` of it. Without a provider (a location that books by location, not by
staff) a slot is free while fewer than `locations.booking_capacity` provider-less appointments
overlap it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db.desk.catalog import UnknownProvider, UnknownService
from db.desk.hours import Schedule, load_schedule
from db.desk.locations import LocationNotFound
from db.errors import Conflict, DomainError, repository


class SlotTaken(Conflict):
    """Someone else holds that time (the provider is booked, or the location is full). Carries
    the time and the location's time zone, for whoever tells the caller."""

    def __init__(self, *, starts_at: datetime, timezone: str) -> None:
        local = starts_at.astimezone(ZoneInfo(timezone))
        super().__init__(f"{local.isoformat(timespec='minutes')} is no longer available")
        self.starts_at = starts_at
        self.timezone = timezone


class BookingRefused(DomainError):
    """A booking rule refused the time, before any database was asked."""


class OutsideHours(BookingRefused):
    pass


class TooSoon(BookingRefused):
    """In the past, or within the lead time."""


class TooFarAhead(BookingRefused):
    pass


class AppointmentInPast(BookingRefused):
    def __init__(self) -> None:
        super().__init__("this appointment has started or is over; it can no longer be moved or cancelled")


class InvalidBookingRules(DomainError):
    pass


MIN_SLOT_STEP_MINUTES = 5


@dataclass(frozen=True)
class BookingRules:
    lead_time_minutes: int = 60
    max_days_ahead: int = 60
    buffer_minutes: int = 0
    slot_step_minutes: int = 30

    def __post_init__(self) -> None:
        # A step of 0 would make slot search loop forever (and the call go silent).
        if self.slot_step_minutes < MIN_SLOT_STEP_MINUTES:
            raise InvalidBookingRules(f"slots are at least {MIN_SLOT_STEP_MINUTES} minutes apart, "
                                      f"not {self.slot_step_minutes}")

    @classmethod
    def from_policies(cls, policies: Mapping | None) -> BookingRules:
        """The booking rules of an agent config's policies (missing keys keep their defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in (policies or {}).items() if k in known and v is not None})


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    provider_id: uuid.UUID | None
    provider_name: str | None


@dataclass(frozen=True)
class BookingContext:
    """What a booking at a location for a service depends on. `candidates` are the providers who
    may take it, in preference order; empty means the location books without providers."""

    organization_id: uuid.UUID
    location_id: uuid.UUID
    timezone: str
    country: str
    capacity: int
    service_id: uuid.UUID
    service_name: str
    duration: timedelta
    candidates: tuple[tuple[uuid.UUID, str], ...]


CONTEXT = """
select l.organization_id, l.timezone, l.country, l.booking_capacity, l.is_active as location_active,
       s.id as service_id, s.name as service_name, s.duration_minutes, s.is_active as service_active,
       s.organization_id = l.organization_id as same_organization,
       array(select array[p.id::text, p.name] from providers p
              join provider_services ps on ps.provider_id = p.id and ps.service_id = s.id
             where p.location_id = l.id and p.is_active and ($3::uuid is null or p.id = $3)
             order by p.name, p.id) as candidates
  from locations l, services s
 where l.id = $1 and s.id = $2
"""


@repository
async def booking_context(
    conn: asyncpg.Connection, *, location_id: uuid.UUID, service_id: uuid.UUID,
    provider_id: uuid.UUID | None = None,
) -> BookingContext:
    record = await conn.fetchrow(CONTEXT, location_id, service_id, provider_id)
    if record is None:
        await _raise_missing(conn, location_id)
    if not record["location_active"]:
        raise LocationNotFound("this location is not taking bookings")
    if not (record["service_active"] and record["same_organization"]):
        raise UnknownService("this service is not offered here")
    candidates = tuple((uuid.UUID(pid), name) for pid, name in record["candidates"])
    if provider_id is not None and not candidates:
        raise UnknownProvider("that provider does not perform this service at this location")
    if not candidates and record["booking_capacity"] == 0:
        raise UnknownService(f"nobody at this location performs {record['service_name']}")
    return BookingContext(
        organization_id=record["organization_id"], location_id=location_id,
        timezone=record["timezone"], country=record["country"], capacity=record["booking_capacity"],
        service_id=record["service_id"], service_name=record["service_name"],
        duration=timedelta(minutes=record["duration_minutes"]), candidates=candidates,
    )


async def _raise_missing(conn: asyncpg.Connection, location_id: uuid.UUID) -> None:
    if await conn.fetchval("select 1 from locations where id = $1", location_id) is None:
        raise LocationNotFound(f"no location with id {location_id}")
    raise UnknownService("no such service")


def check_window(starts_at: datetime, *, rules: BookingRules, now: datetime) -> None:
    """Refuse a start in the past, inside the lead time, or beyond max_days_ahead."""
    if starts_at.tzinfo is None:
        raise BookingRefused("appointment times must be timezone-aware")
    if starts_at <= now:
        raise TooSoon("that time is in the past")
    if starts_at < now + timedelta(minutes=rules.lead_time_minutes):
        raise TooSoon(f"appointments must be booked at least {rules.lead_time_minutes} minutes ahead")
    if starts_at > now + timedelta(days=rules.max_days_ahead):
        raise TooFarAhead(f"appointments can be booked at most {rules.max_days_ahead} days ahead")


def check_hours(schedule: Schedule, starts_at: datetime, ends_at: datetime) -> None:
    interval = schedule.interval_at(starts_at)
    if interval is None or ends_at > interval[1]:
        day = starts_at.astimezone(schedule.tz).date()
        if holiday := schedule.holiday(day):
            raise OutsideHours(f"the location is closed on {day.strftime('%A %B %-d')} for {holiday}")
        raise OutsideHours("the location is not open for the whole of that appointment")


class Busy:
    """Confirmed appointments by provider (None: provider-less), for the free/taken test."""

    def __init__(self, rows: Sequence[tuple[uuid.UUID | None, datetime, datetime]], buffer: timedelta):
        self.buffer = buffer
        self.by_key: dict[uuid.UUID | None, list[tuple[datetime, datetime]]] = {}
        for key, start, end in rows:
            self.by_key.setdefault(key, []).append((start, end))

    def overlapping(self, key: uuid.UUID | None, start: datetime, end: datetime) -> int:
        lo, hi = start - self.buffer, end + self.buffer
        return sum(1 for s, e in self.by_key.get(key, ()) if s < hi and e > lo)

    def free_provider(self, ctx: BookingContext, start: datetime, end: datetime) -> tuple | None:
        """The first candidate free at [start, end); (None, None) for a location with room."""
        if not ctx.candidates:
            return (None, None) if self.overlapping(None, start, end) < ctx.capacity else None
        return next((c for c in ctx.candidates if not self.overlapping(c[0], start, end)), None)


BUSY = """
select provider_id, starts_at, ends_at from appointments
 where location_id = $1 and status = 'confirmed' and starts_at < $3 and ends_at > $2
   and (provider_id = any($4::uuid[]) or ($5 and provider_id is null))
   and ($6::uuid is null or id <> $6)
"""


@repository
async def load_busy(
    conn: asyncpg.Connection, ctx: BookingContext, start: datetime, end: datetime, *,
    buffer: timedelta, exclude_id: uuid.UUID | None = None,
) -> Busy:
    ids = [c[0] for c in ctx.candidates]
    rows = await conn.fetch(BUSY, ctx.location_id, start - buffer, end + buffer, ids,
                            not ctx.candidates, exclude_id)
    return Busy([(r["provider_id"], r["starts_at"], r["ends_at"]) for r in rows], buffer)


@repository
async def available_slots(
    conn: asyncpg.Connection,
    *,
    location_id: uuid.UUID,
    service_id: uuid.UUID,
    start_date: date,
    end_date: date,
    provider_id: uuid.UUID | None = None,
    rules: BookingRules | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[Slot]:
    """Free start times for a service between two local dates (inclusive), earliest first, in the
    location's time zone, each with the provider who would take it (the first free one when
    `provider_id` is not given)."""
    rules, now = rules or BookingRules(), now or datetime.now(UTC)
    ctx = await booking_context(conn, location_id=location_id, service_id=service_id, provider_id=provider_id)
    schedule = await load_schedule(conn, location_id=location_id, start=start_date, end=end_date)
    days = [start_date + timedelta(days=i) for i in range((end_date - start_date).days + 1)]
    intervals = [iv for day in days for iv in schedule.intervals(day)]
    if not intervals:
        return []
    busy = await load_busy(conn, ctx, intervals[0][0], intervals[-1][1],
                           buffer=timedelta(minutes=rules.buffer_minutes))
    return _free_slots(ctx, intervals, busy, rules, now, limit)


def _free_slots(ctx: BookingContext, intervals: list, busy: Busy, rules: BookingRules,
                now: datetime, limit: int | None) -> list[Slot]:
    earliest = now + timedelta(minutes=rules.lead_time_minutes)
    latest = now + timedelta(days=rules.max_days_ahead)
    step, slots, tz = timedelta(minutes=rules.slot_step_minutes), [], ZoneInfo(ctx.timezone)
    for open_at, close_at in intervals:
        start = open_at
        while start + ctx.duration <= close_at and start <= latest and (limit is None or len(slots) < limit):
            taker = busy.free_provider(ctx, start, start + ctx.duration) if start >= earliest else None
            if taker is not None:
                slots.append(Slot(start.astimezone(tz), (start + ctx.duration).astimezone(tz), *taker))
            start += step
    return slots
