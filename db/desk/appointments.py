"""appointments: book, reschedule, cancel and find, safe against concurrent callers.

book() and reschedule() own their transaction (a savepoint when the caller already has one): they
lock the providers who could take the slot (or, for provider-less bookings, the location row, whose
booking_capacity bounds them), re-check the slot with buffers, and write. The exclusion constraint
appointments_provider_no_overlap is the last word for every writer: its violation is SlotTaken.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db import errors
from db.calls.calls import CALL_NOT_FOUND
from db.desk.confirmation_codes import UNIQUE_KEY, normalize_code, with_fresh_code
from db.desk.customers import customer_name as checked_name
from db.desk.hours import load_schedule
from db.desk.phone import DEFAULT_REGION, normalize_phone, require_phone
from db.desk.slots import (
    AppointmentInPast,
    BookingContext,
    BookingRules,
    SlotTaken,
    booking_context,
    check_hours,
    check_window,
    load_busy,
)
from db.errors import Conflict, InvalidInput, NotFound, repository

log = logging.getLogger(__name__)


class AppointmentNotFound(NotFound):
    pass


CONSTRAINTS = errors.constraints({
    "appointments_organization_id_fkey": (NotFound, "no organisation with this id"),
    "appointments_location_fkey": (NotFound, "no such location in this organisation"),
    "appointments_service_fkey": (NotFound, "no such service in this organisation"),
    "appointments_provider_fkey": (NotFound, "no such provider at this location"),
    "appointments_call_id_fkey": CALL_NOT_FOUND,
    "appointments_last_call_id_fkey": CALL_NOT_FOUND,
    UNIQUE_KEY: (Conflict, "this confirmation code is already in use"),
    "appointments_confirmation_code_check": (
        InvalidInput, "a confirmation code is 6 letters and digits, without 0, O, 1, I or L"),
    "appointments_customer_name_check": (InvalidInput, "the customer's name is required"),
    "appointments_customer_phone_check": (InvalidInput, "the customer's phone number must be E.164"),
    "appointments_time_check": (InvalidInput, "an appointment must end after it starts"),
    "appointments_provider_no_overlap": (Conflict, "the provider already has an appointment then"),
})


@dataclass(frozen=True)
class Appointment:
    id: uuid.UUID
    organization_id: uuid.UUID
    location_id: uuid.UUID
    service_id: uuid.UUID
    provider_id: uuid.UUID | None
    customer_name: str
    customer_phone: str
    starts_at: datetime
    ends_at: datetime
    status: str
    confirmation_code: str
    notes: str | None
    call_id: uuid.UUID | None
    last_call_id: uuid.UUID | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    service_name: str
    provider_name: str | None
    location_name: str
    timezone: str

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Appointment:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    @property
    def local_starts_at(self) -> datetime:
        return self.starts_at.astimezone(ZoneInfo(self.timezone))


# `a` is the appointments table or a CTE of written rows; the joins add what a caller is told.
_SELECT = """
select a.id, a.organization_id, a.location_id, a.service_id, a.provider_id, a.customer_name,
       a.customer_phone, a.starts_at, a.ends_at, a.status::text as status, a.confirmation_code,
       a.notes, a.call_id, a.last_call_id, a.cancelled_at, a.created_at, a.updated_at,
       s.name as service_name, p.name as provider_name, l.name as location_name, l.timezone
  from {source} a
  join services s on s.id = a.service_id
  join locations l on l.id = a.location_id
  left join providers p on p.id = a.provider_id
"""

INSERT = "with a as (insert into appointments (organization_id, location_id, service_id, provider_id, " \
    "customer_name, customer_phone, starts_at, ends_at, confirmation_code, notes, call_id, last_call_id) " \
    "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) returning *) " + _SELECT.format(source="a")

MOVE = """with a as (update appointments set starts_at = $2, ends_at = $3, provider_id = $4,
    last_call_id = coalesce($5, last_call_id) where id = $1 returning *) """ + _SELECT.format(source="a")

LOCK_PROVIDERS = "select id from providers where id = any($1::uuid[]) order by id for no key update"
LOCK_LOCATION = "select id from locations where id = $1 for no key update"
GET_FOR_UPDATE = _SELECT.format(source="appointments") + " where a.id = $1 for update of a"


async def _prepare(conn, *, location_id, service_id, provider_id, starts_at, rules, now) -> BookingContext:
    """Everything that can be refused before taking locks: time window, service, provider, hours."""
    check_window(starts_at, rules=rules, now=now)
    ctx = await booking_context(conn, location_id=location_id, service_id=service_id, provider_id=provider_id)
    local_day = starts_at.astimezone(ZoneInfo(ctx.timezone)).date()
    schedule = await load_schedule(conn, location_id=location_id, start=local_day - timedelta(days=1),
                                   end=local_day + timedelta(days=1))
    check_hours(schedule, starts_at, starts_at + ctx.duration)
    return ctx


async def _claim(conn, ctx: BookingContext, starts_at: datetime, rules: BookingRules,
                 exclude_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """Lock who could take the slot, then pick the provider (None: the location) free for it."""
    if ctx.candidates:
        await conn.execute(LOCK_PROVIDERS, sorted(c[0] for c in ctx.candidates))
    else:
        await conn.execute(LOCK_LOCATION, ctx.location_id)
    ends_at = starts_at + ctx.duration
    busy = await load_busy(conn, ctx, starts_at, ends_at, buffer=timedelta(minutes=rules.buffer_minutes),
                           exclude_id=exclude_id)
    taker = busy.free_provider(ctx, starts_at, ends_at)
    if taker is None:
        raise SlotTaken(starts_at=starts_at, timezone=ctx.timezone)
    return taker[0]


@repository
async def book(
    conn: asyncpg.Connection,
    *,
    location_id: uuid.UUID,
    service_id: uuid.UUID,
    starts_at: datetime,
    customer_name: str,
    customer_phone: str,
    provider_id: uuid.UUID | None = None,
    notes: str | None = None,
    call_id: uuid.UUID | None = None,
    rules: BookingRules | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book a confirmed appointment, with `provider_id` or the first qualified provider free then.
    A national phone number is read in the location's country. Raises SlotTaken, TooSoon,
    TooFarAhead, OutsideHours, UnknownService, UnknownProvider, InvalidPhone."""
    rules, now = rules or BookingRules(), now or datetime.now(UTC)
    name = checked_name(customer_name)
    ctx = await _prepare(conn, location_id=location_id, service_id=service_id, provider_id=provider_id,
                         starts_at=starts_at, rules=rules, now=now)
    phone = require_phone(customer_phone, region=ctx.country)
    async with conn.transaction():
        chosen = await _claim(conn, ctx, starts_at, rules)
        values = (ctx.organization_id, location_id, service_id, chosen, name, phone,
                  starts_at, starts_at + ctx.duration)
        record = await with_fresh_code(lambda code: _write(
            conn, INSERT, *values, code, notes, call_id, starts_at=starts_at, timezone=ctx.timezone))
    log.info("booked %s at %s (%s)", record["id"], starts_at.isoformat(), ctx.service_name)
    return Appointment.from_record(record)


async def _write(conn, query: str, *args, starts_at: datetime, timezone: str) -> asyncpg.Record:
    """Run one write in a savepoint; the no-overlap constraint's verdict becomes SlotTaken."""
    try:
        async with conn.transaction():
            return await conn.fetchrow(query, *args)
    except asyncpg.ExclusionViolationError as exc:
        raise SlotTaken(starts_at=starts_at, timezone=timezone) from exc


@repository
async def reschedule(
    conn: asyncpg.Connection,
    *,
    appointment_id: uuid.UUID,
    starts_at: datetime,
    provider_id: uuid.UUID | None = None,
    call_id: uuid.UUID | None = None,
    rules: BookingRules | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move a confirmed appointment (same row, same confirmation code) to `starts_at`, with
    `provider_id` or its current provider. All or nothing: on SlotTaken the old time still holds."""
    rules, now = rules or BookingRules(), now or datetime.now(UTC)
    async with conn.transaction():
        current = await _confirmed_for_update(conn, appointment_id)
        if current.starts_at <= now:
            raise AppointmentInPast()
        ctx = await _prepare(conn, location_id=current.location_id, service_id=current.service_id,
                             provider_id=provider_id or current.provider_id, starts_at=starts_at,
                             rules=rules, now=now)
        chosen = await _claim(conn, ctx, starts_at, rules, exclude_id=appointment_id)
        record = await _write(conn, MOVE, appointment_id, starts_at, starts_at + ctx.duration, chosen,
                              call_id, starts_at=starts_at, timezone=ctx.timezone)
    return Appointment.from_record(record)


async def _confirmed_for_update(conn: asyncpg.Connection, appointment_id: uuid.UUID) -> Appointment:
    record = await conn.fetchrow(GET_FOR_UPDATE, appointment_id)
    if record is None:
        raise AppointmentNotFound(f"no appointment with id {appointment_id}")
    if record["status"] != "confirmed":
        raise InvalidInput(f"this appointment is {record['status']}; only confirmed ones can be changed")
    return Appointment.from_record(record)


CANCEL = """with a as (update appointments set status = 'cancelled', cancelled_at = $2,
    cancellation_reason = $3, last_call_id = coalesce($4, last_call_id)
    where id = $1 and status = 'confirmed' and starts_at > $2 returning *) """ + _SELECT.format(source="a")

GET = _SELECT.format(source="appointments") + " where a.id = $1"


@repository
async def cancel(
    conn: asyncpg.Connection,
    *,
    appointment_id: uuid.UUID,
    reason: str | None = None,
    call_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Cancel a confirmed appointment that has not started (else AppointmentInPast), freeing its
    slot. Cancelling it again returns it unchanged."""
    record = await conn.fetchrow(CANCEL, appointment_id, now or datetime.now(UTC), reason, call_id)
    if record is None:
        record = await conn.fetchrow(GET, appointment_id)
        if record is None:
            raise AppointmentNotFound(f"no appointment with id {appointment_id}")
        if record["status"] == "confirmed":  # the update skipped it: it has started
            raise AppointmentInPast()
        if record["status"] != "cancelled":
            raise InvalidInput(f"this appointment is {record['status']} and can no longer be cancelled")
    return Appointment.from_record(record)


@repository
async def get_appointment(conn: asyncpg.Connection, *, appointment_id: uuid.UUID) -> Appointment:
    record = await conn.fetchrow(GET, appointment_id)
    if record is None:
        raise AppointmentNotFound(f"no appointment with id {appointment_id}")
    return Appointment.from_record(record)


BY_CODE = _SELECT.format(source="appointments") + """
 where a.confirmation_code = $1 and ($2::uuid is null or a.organization_id = $2)"""


@repository
async def find_by_code(
    conn: asyncpg.Connection, *, code: str, organization_id: uuid.UUID | None = None
) -> Appointment:
    """The appointment with this confirmation code (within `organization_id`, when given)."""
    record = await conn.fetchrow(BY_CODE, normalize_code(code), organization_id)
    if record is None:
        raise AppointmentNotFound("no appointment has this confirmation code")
    return Appointment.from_record(record)


BY_PHONE = _SELECT.format(source="appointments") + """
 where a.organization_id = $1 and a.customer_phone = $2
   and ($3 or (a.status = 'confirmed' and a.ends_at > $4))
 order by a.starts_at
 limit 20"""


@repository
async def find_by_phone(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    phone: str,
    include_past: bool = False,
    now: datetime | None = None,
    region: str = DEFAULT_REGION,
) -> list[Appointment]:
    """A caller's upcoming confirmed appointments with this organisation (all of them, cancelled
    and past included, with `include_past`), earliest first; none for what is not a phone number."""
    number = normalize_phone(phone, region=region)
    if number is None:
        return []
    records = await conn.fetch(BY_PHONE, organization_id, number, include_past, now or datetime.now(UTC))
    return [Appointment.from_record(r) for r in records]
