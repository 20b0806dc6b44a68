"""Booking, finding, moving and cancelling appointments."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from livekit.agents import RunContext, ToolError, function_tool

from agent.call import FrontDesk
from agent.speech import spoken_time
from agent.tools._common import parse_date, parse_local_time, speakable_errors
from db.calls import calls
from db.desk import appointments, catalog, configs, identity, slots
from db.desk.identity import IdentityRefused
from db.desk.slots import BookingRules


def _rules(desk: FrontDesk) -> BookingRules:
    return desk.config.booking_rules if desk.config is not None else BookingRules()


async def _rules_of(conn, desk: FrontDesk, appointment: appointments.Appointment) -> BookingRules:
    """The booking rules where the appointment is: this call's, or its location's own config."""
    if appointment.location_id == desk.location.id:
        return _rules(desk)
    config = await configs.active_config(conn, location_id=appointment.location_id)
    return config.booking_rules if config is not None else BookingRules()


@function_tool
async def list_services(context: RunContext[FrontDesk]) -> str:
    """The services this business offers, with their length and price."""
    desk = context.userdata
    with speakable_errors():
        async with desk.pool.acquire() as conn:
            services = await catalog.list_services(conn, organization_id=desk.organization_id)
    return "\n".join(
        f"{s.name}: {s.duration_minutes} minutes" + (f", {s.price} {s.currency}" if s.price else "")
        for s in services
    )


@function_tool
async def check_availability(context: RunContext[FrontDesk], service: str, date: str) -> str:
    """Free appointment times for a service on a given day (and the days after it, if that day
    is full). Offer the caller two or three of them.

    Args:
        service: the service name, e.g. "cleaning"
        date: the day the caller wants, YYYY-MM-DD, in the location's local calendar
    """
    desk = context.userdata
    day = parse_date(date)
    with speakable_errors():
        async with desk.pool.acquire() as conn:
            wanted = await catalog.find_service(conn, organization_id=desk.organization_id,
                                                name=service)
            free = await slots.available_slots(
                conn, location_id=desk.location.id, service_id=wanted.id, start_date=day,
                end_date=day + timedelta(days=6), rules=_rules(desk), limit=6)
    if not free:
        return f"No free time for a {wanted.name} in the week from {day.isoformat()}."
    tz = desk.location.timezone
    return f"Free times for a {wanted.name} (local time, pass the ISO form to book):\n" + "\n".join(
        f"{spoken_time(s.starts_at, tz)} = {s.starts_at.astimezone(desk.location_tz).isoformat()}"
        + (f" with {s.provider_name}" if s.provider_name else "")
        for s in free
    )


@function_tool
async def book_appointment(
    context: RunContext[FrontDesk], service: str, start_time: str, customer_name: str,
    phone_number: str | None = None,
) -> str:
    """Book an appointment. Only call this after you have read the service, the day and time and
    the name back to the caller and they said yes. Read the confirmation code back slowly: it
    is the only time it is said, and the caller needs it, with their name, to change the booking.

    Args:
        service: the service name, e.g. "cleaning"
        start_time: local start time, YYYY-MM-DDTHH:MM, one of the free times you found
        customer_name: the caller's full name
        phone_number: a number to reach them; leave empty to use the number they are calling from
    """
    desk = context.userdata
    phone = phone_number or desk.caller.number
    if not phone:
        raise ToolError("ask the caller for a phone number to put on the booking")
    starts_at = parse_local_time(start_time, desk.location.timezone)
    with speakable_errors(), desk.limits.booking():
        async with desk.pool.acquire() as conn, conn.transaction():
            wanted = await catalog.find_service(conn, organization_id=desk.organization_id,
                                                name=service)
            # The appointment points at this call: make sure its row exists (a no-op merge
            # when the recorder wrote it already).
            await calls.start_call(conn, session_id=desk.session_id)
            booked = await appointments.book(
                conn, location_id=desk.location.id, service_id=wanted.id, starts_at=starts_at,
                customer_name=customer_name, customer_phone=phone, call_id=desk.call_id,
                rules=_rules(desk))
    desk.recording.event("appointment_booked", _summary(booked), key=f"booked:{booked.id}")
    desk.achieved("appointment_booked")
    return (f"Booked: {booked.service_name} on {spoken_time(booked.starts_at, booked.timezone)}"
            f"{' with ' + booked.provider_name if booked.provider_name else ''}. "
            f"Confirmation code {' '.join(booked.confirmation_code)}.")


@function_tool
async def find_appointment(context: RunContext[FrontDesk], confirmation_code: str,
                           customer_name: str) -> str:
    """Find an existing appointment. Ask the caller for its confirmation code and the name it was
    booked under: both are needed (the number they call from proves nothing). The answer never
    repeats the code.

    Args:
        confirmation_code: the six-character code the caller reads out, e.g. "K7M2XP"
        customer_name: the name the appointment is under, as the caller says it
    """
    desk = context.userdata
    with speakable_errors():
        async with desk.pool.acquire() as conn:
            found = await _identified(desk, conn, confirmation_code, customer_name)
    with_whom = f" with {found.provider_name}" if found.provider_name else ""
    return (f"Found: {found.service_name} on {spoken_time(found.starts_at, found.timezone)} at "
            f"{found.location_name}{with_whom} ({found.status}).")


@function_tool
async def reschedule_appointment(
    context: RunContext[FrontDesk], confirmation_code: str, customer_name: str, new_start_time: str
) -> str:
    """Move an appointment to a new time (the old time is kept if the new one cannot be had).
    Confirm the new time with the caller first. Needs the code and the name it was booked under.

    Args:
        confirmation_code: the appointment's confirmation code, as the caller reads it out
        customer_name: the name the appointment is under, as the caller says it
        new_start_time: start time, YYYY-MM-DDTHH:MM, local to the appointment's location
    """
    desk = context.userdata
    with speakable_errors():
        async with desk.pool.acquire() as conn, conn.transaction():
            current = await _identified(desk, conn, confirmation_code, customer_name)
            # The appointment's own location decides (time zone, hours, rules), not the one the
            # caller dialed: a Santa Monica 11:30 is 11:30 Pacific from the Midtown line too.
            starts_at = parse_local_time(new_start_time, current.timezone)
            await calls.start_call(conn, session_id=desk.session_id)
            moved = await appointments.reschedule(
                conn, appointment_id=current.id, starts_at=starts_at, call_id=desk.call_id,
                rules=await _rules_of(conn, desk, current))
    desk.recording.event("appointment_rescheduled",
                         {**_summary(moved), "previous_starts_at": current.starts_at.isoformat()},
                         key=f"rescheduled:{moved.id}:{moved.starts_at.isoformat()}")
    desk.achieved("appointment_rescheduled")
    return f"Moved to {spoken_time(moved.starts_at, moved.timezone)}; the code stays the same."


@function_tool
async def cancel_appointment(context: RunContext[FrontDesk], confirmation_code: str,
                             customer_name: str) -> str:
    """Cancel an appointment. Confirm with the caller before cancelling. Needs the code and the
    name it was booked under.

    Args:
        confirmation_code: the appointment's confirmation code, as the caller reads it out
        customer_name: the name the appointment is under, as the caller says it
    """
    desk = context.userdata
    with speakable_errors():
        async with desk.pool.acquire() as conn, conn.transaction():
            current = await _identified(desk, conn, confirmation_code, customer_name)
            await calls.start_call(conn, session_id=desk.session_id)
            cancelled = await appointments.cancel(conn, appointment_id=current.id,
                                                  call_id=desk.call_id, reason="caller asked")
    desk.recording.event("appointment_cancelled", _summary(cancelled),
                         key=f"cancelled:{cancelled.id}")
    desk.achieved("appointment_cancelled")
    return f"Cancelled the {cancelled.service_name} on " \
           f"{spoken_time(cancelled.starts_at, cancelled.timezone)}."


async def _identified(desk: FrontDesk, conn: asyncpg.Connection, code: str,
                      name: str) -> appointments.Appointment:
    """The appointment the caller named by code and name (db.desk.identity), within this call's
    tries (db.desk.call_limits). Each refused try is a warning in the call's log, without the code
    or the name given."""
    try:
        with desk.limits.identity_attempt():
            return await identity.identify(conn, organization_id=desk.organization_id,
                                           code=code, name=name)
    except IdentityRefused as exc:
        attempt = desk.limits.identity_refusals
        desk.recording.event("identity_refused", {"attempt": attempt, "reason": exc.reason},
                             key=f"identity_refused:{attempt}", severity="warning")
        raise


def _summary(appointment: appointments.Appointment) -> dict:
    return {"appointment_id": str(appointment.id), "code": appointment.confirmation_code,
            "service": appointment.service_name, "starts_at": appointment.starts_at.isoformat(),
            "provider": appointment.provider_name, "location_id": str(appointment.location_id)}
