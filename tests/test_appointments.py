"""Appointments: booking rules, a database that will not double-book, atomic reschedule, cancel,
and finding a caller's appointments."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import asyncpg
import pytest

from db.calls import calls
from db.demo.seed import seed_demo
from db.desk import appointments
from db.desk.appointments import AppointmentNotFound
from db.desk.catalog import UnknownProvider, UnknownService
from db.desk.confirmation_codes import InvalidCode
from db.desk.customers import InvalidName
from db.desk.phone import InvalidPhone
from db.desk.slots import BookingRefused, BookingRules, OutsideHours, SlotTaken, TooFarAhead, TooSoon
from db.errors import InvalidInput
from tests.clock import MONDAY, monday, next_holiday, on
from tests.frontdesk_helpers import make_shop

pytestmark = pytest.mark.db

NOW = monday(8)  # Monday 8:00 in New York
RULES = BookingRules(lead_time_minutes=60, max_days_ahead=30)


async def book(conn, shop, starts_at: datetime, **kwargs):
    defaults = {"customer_name": "Ann Lee", "customer_phone": "555-010-4444", "rules": RULES, "now": NOW}
    return await appointments.book(conn, location_id=shop.location_id, service_id=shop.service_id,
                                   starts_at=starts_at, **{**defaults, **kwargs})


async def test_a_booking_is_confirmed_with_a_code_easy_to_say(conn):
    shop = await make_shop(conn, slug="shop")
    call = await calls.start_call(conn, session_id="RM_booking")
    appointment = await book(conn, shop, monday(10), call_id=call.id)
    assert appointment.status == "confirmed"
    assert re.fullmatch(r"[A-HJKMNP-Z2-9]{6}", appointment.confirmation_code)
    assert appointment.customer_phone == "+15550104444"
    assert appointment.local_starts_at == monday(10)
    assert appointment.ends_at - appointment.starts_at == monday(11) - monday(10)
    assert (appointment.provider_name, appointment.service_name) == ("Alex Doe", "Consultation")
    assert appointment.call_id == appointment.last_call_id == call.id


REFUSED = [
    (monday(7), TooSoon, "in the past"),
    (monday(8, 30), TooSoon, "at least 60 minutes ahead"),
    (monday(9, days=31), TooFarAhead, "30 days ahead"),
    (monday(16, 30), OutsideHours, "not open"),  # would end at 17:30, after closing
    (monday(17), OutsideHours, "not open"),
    (monday(10).replace(tzinfo=None), BookingRefused, "timezone-aware"),
]


async def test_bookings_outside_the_rules_are_refused_with_a_clear_reason(conn):
    shop = await make_shop(conn, slug="shop")
    for starts_at, error, message in REFUSED:
        with pytest.raises(error, match=message):
            await book(conn, shop, starts_at)
    for name, phone, error in (("  ", "5550104444", InvalidName), ("Ann", "not a number", InvalidPhone),
                               ("Ann", "anonymous", InvalidPhone), ("Ann", "911", InvalidPhone)):
        with pytest.raises(error):
            await book(conn, shop, monday(10), customer_name=name, customer_phone=phone)
    assert await conn.fetchval("select count(*) from appointments") == 0


async def test_bookings_over_lunch_on_a_holiday_or_for_an_unknown_service_are_refused(conn):
    demo = await seed_demo(conn)
    midtown, cleaning = demo.midtown_location_id, demo.services["Dental cleaning"]
    cases = [
        (dict(service_id=cleaning, starts_at=monday(12)), OutsideHours),  # runs into the lunch break
        (dict(service_id=cleaning, starts_at=monday(10, days=-1)), OutsideHours),  # Sunday
        (dict(service_id=demo.config_v1_id, starts_at=monday(10)), UnknownService),
        (dict(service_id=cleaning, starts_at=monday(10), provider_id=demo.providers["Dr. Maya Patel"]),
         UnknownProvider),  # Dr. Patel does not do cleanings
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            await appointments.book(conn, location_id=midtown, customer_name="Ann",
                                    customer_phone="5550104444", rules=RULES, now=monday(8, days=-2),
                                    **kwargs)
    await conn.execute("update services set is_active = false where id = $1", cleaning)
    with pytest.raises(UnknownService):
        await appointments.book(conn, location_id=midtown, service_id=cleaning, starts_at=monday(10),
                                customer_name="Ann", customer_phone="5550104444", rules=RULES, now=NOW)


async def test_a_booking_on_a_public_holiday_is_refused_with_the_holiday_s_name(conn):
    demo = await seed_demo(conn)
    holiday, name = next_holiday("NY", MONDAY, weekdays=(1, 2, 3, 4, 5, 6))  # Midtown would be open
    refusal = f"closed on {holiday.strftime('%A %B %-d')} for {re.escape(name)}"
    with pytest.raises(OutsideHours, match=refusal):
        await appointments.book(conn, location_id=demo.midtown_location_id,
                                service_id=demo.services["Dental cleaning"], starts_at=on(holiday, 10),
                                customer_name="Ann", customer_phone="5550104444", rules=RULES,
                                now=on(holiday, 8) - timedelta(days=2))
    assert await conn.fetchval("select count(*) from appointments") == 0


async def test_twenty_concurrent_bookings_of_one_slot_exactly_one_wins(pool):
    async with pool.acquire() as conn:
        shop = await make_shop(conn, slug="shop")

    async def attempt(i: int):
        async with pool.acquire() as conn:
            return await book(conn, shop, monday(10), customer_name=f"Caller {i}",
                              customer_phone=f"55501000{i:02d}")

    results = await asyncio.gather(*(attempt(i) for i in range(20)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, appointments.Appointment)]
    losers = [r for r in results if isinstance(r, SlotTaken)]
    assert len(winners) == 1 and len(losers) == 19, results
    assert "no longer available" in str(losers[0])
    async with pool.acquire() as conn:
        rows = await conn.fetch("select id, status from appointments")
    assert [(r["id"], r["status"]) for r in rows] == [(winners[0].id, "confirmed")]


async def test_twenty_concurrent_bookings_without_providers_fill_the_capacity_exactly(pool):
    async with pool.acquire() as conn:
        shop = await make_shop(conn, slug="shop", with_provider=False, capacity=3)

    async def attempt(i: int):
        async with pool.acquire() as conn:
            return await book(conn, shop, monday(10), customer_phone=f"55501000{i:02d}")

    results = await asyncio.gather(*(attempt(i) for i in range(20)), return_exceptions=True)
    assert sum(isinstance(r, appointments.Appointment) for r in results) == 3
    assert sum(isinstance(r, SlotTaken) for r in results) == 17
    async with pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from appointments where provider_id is null") == 3


async def test_the_database_itself_refuses_overlapping_confirmed_appointments(conn):
    shop = await make_shop(conn, slug="shop")
    first = await book(conn, shop, monday(10))
    insert = """insert into appointments (organization_id, location_id, service_id, provider_id,
        customer_name, customer_phone, starts_at, ends_at, confirmation_code, status)
        values ($1, $2, $3, $4, 'Bob', '+15550100001', $5, $6, $7, $8::appointment_status)"""
    args = (shop.organization_id, shop.location_id, shop.service_id, shop.provider_id,
            monday(10, 30), monday(11, 30))
    with pytest.raises(asyncpg.ExclusionViolationError, match="appointments_provider_no_overlap"):
        await conn.execute(insert, *args, "BCDFGH", "confirmed")
    await conn.execute(insert, *args, "BCDFGJ", "cancelled")  # a cancelled one holds no slot
    await appointments.cancel(conn, appointment_id=first.id, now=NOW)
    await conn.execute(insert, *args, "BCDFGK", "confirmed")


async def test_reschedule_into_a_taken_slot_leaves_the_original_intact(conn):
    shop = await make_shop(conn, slug="shop")
    mine = await book(conn, shop, monday(10))
    await book(conn, shop, monday(14), customer_name="Someone Else")
    with pytest.raises(SlotTaken):
        await appointments.reschedule(conn, appointment_id=mine.id, starts_at=monday(14, 30), rules=RULES,
                                      now=NOW)
    with pytest.raises(OutsideHours):
        await appointments.reschedule(conn, appointment_id=mine.id, starts_at=monday(20), rules=RULES,
                                      now=NOW)
    after = await appointments.get_appointment(conn, appointment_id=mine.id)
    assert (after.starts_at, after.status, after.confirmation_code) == (mine.starts_at, "confirmed",
                                                                        mine.confirmation_code)
    with pytest.raises(SlotTaken):  # the original slot is still held
        await book(conn, shop, monday(10))


async def test_reschedule_moves_the_same_appointment_and_frees_the_old_slot(conn):
    shop = await make_shop(conn, slug="shop")
    first_call = await calls.start_call(conn, session_id="RM_first")
    second_call = await calls.start_call(conn, session_id="RM_second")
    mine = await book(conn, shop, monday(10), call_id=first_call.id)
    moved = await appointments.reschedule(conn, appointment_id=mine.id, starts_at=monday(10, 30),
                                          call_id=second_call.id, rules=RULES, now=NOW)
    assert (moved.id, moved.confirmation_code) == (mine.id, mine.confirmation_code)
    assert moved.local_starts_at == monday(10, 30)
    assert (moved.call_id, moved.last_call_id) == (first_call.id, second_call.id)
    moved = await appointments.reschedule(conn, appointment_id=mine.id, starts_at=monday(15), rules=RULES,
                                          now=NOW)
    assert moved.last_call_id == second_call.id
    other = await book(conn, shop, monday(10), customer_name="Next Caller")
    assert other.starts_at == monday(10)


async def test_cancel_frees_the_slot_and_is_idempotent(conn):
    shop = await make_shop(conn, slug="shop")
    call = await calls.start_call(conn, session_id="RM_cancel")
    mine = await book(conn, shop, monday(10))
    cancelled = await appointments.cancel(conn, appointment_id=mine.id, reason="feeling better",
                                          call_id=call.id, now=NOW)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at == NOW
    assert cancelled.last_call_id == call.id
    again = await appointments.cancel(conn, appointment_id=mine.id, now=monday(9))
    assert again.cancelled_at == NOW
    assert (await book(conn, shop, monday(10))).status == "confirmed"
    with pytest.raises(InvalidInput, match="cancelled"):
        await appointments.reschedule(conn, appointment_id=mine.id, starts_at=monday(15), rules=RULES,
                                      now=NOW)
    await conn.execute("update appointments set status = 'completed' where id <> $1", mine.id)
    done = await conn.fetchval("select id from appointments where status = 'completed'")
    with pytest.raises(InvalidInput, match="completed"):
        await appointments.cancel(conn, appointment_id=done, now=NOW)


async def test_a_caller_finds_their_appointments_by_phone_or_code(conn):
    shop = await make_shop(conn, slug="shop")
    other_shop = await make_shop(conn, slug="other")
    first = await book(conn, shop, monday(10), customer_phone="+1 (555) 010-7777")
    second = await book(conn, shop, monday(11, days=1), customer_phone="5550107777")
    await book(conn, other_shop, monday(10), customer_phone="5550107777")
    await book(conn, shop, monday(15), customer_phone="5550108888")
    cancelled = await book(conn, shop, monday(14, days=2), customer_phone="5550107777")
    await appointments.cancel(conn, appointment_id=cancelled.id, now=NOW)

    found = await appointments.find_by_phone(conn, organization_id=shop.organization_id,
                                             phone="555.010.7777", now=NOW)
    assert [a.id for a in found] == [first.id, second.id]
    later = await appointments.find_by_phone(conn, organization_id=shop.organization_id,
                                             phone="15550107777", now=monday(12))
    assert [a.id for a in later] == [second.id]
    everything = await appointments.find_by_phone(conn, organization_id=shop.organization_id,
                                                  phone="5550107777", include_past=True, now=monday(12))
    assert [a.id for a in everything] == [first.id, second.id, cancelled.id]

    code = first.confirmation_code
    spoken = f"{code[:3].lower()}-{code[3:]}"
    assert (await appointments.find_by_code(conn, code=spoken)).id == first.id
    with pytest.raises(AppointmentNotFound):
        await appointments.find_by_code(conn, code=code, organization_id=other_shop.organization_id)
    with pytest.raises(InvalidCode, match="6 letters"):
        await appointments.find_by_code(conn, code="0OIL1")
