"""Opening hours and slot search, in the location's own time zone: lunch breaks, holidays, special
hours, DST changes, existing appointments with buffers, lead time and how far ahead."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest

from db.demo.seed import seed_demo
from db.desk import appointments, hours, locations, public_holidays
from db.desk.public_holidays import InvalidHolidaySetting, UnknownHolidayCalendar, holiday_names
from db.desk.slots import BookingRules, InvalidBookingRules, available_slots
from db.errors import Conflict, InvalidInput
from tests.clock import LA, MONDAY, NY, at, monday, next_holiday, on
from tests.frontdesk_helpers import make_shop

pytestmark = pytest.mark.db

NO_LEAD = BookingRules(lead_time_minutes=0, max_days_ahead=365)
SUNDAY_BEFORE = monday(8, days=-1)


def local_times(slots, tz=NY) -> list[str]:
    return [s.starts_at.astimezone(tz).strftime("%H:%M") for s in slots]


async def test_midtown_is_open_in_the_morning_and_closed_over_lunch(conn):
    demo = await seed_demo(conn)
    status = await hours.opening_status(conn, location_id=demo.midtown_location_id, now=monday(10))
    assert status.is_open and status.open_until == monday(12, 30)
    assert status.next_opening == monday(13, 30)
    lunch = await hours.opening_status(conn, location_id=demo.midtown_location_id, now=monday(12, 45))
    assert not lunch.is_open and lunch.open_until is None
    assert lunch.next_opening == monday(13, 30)
    assert lunch.timezone == "America/New_York"


async def test_closed_on_sunday_and_on_a_holiday_next_opening_is_the_next_working_day(conn):
    demo = await seed_demo(conn)
    sunday = await hours.opening_status(conn, location_id=demo.midtown_location_id, now=SUNDAY_BEFORE)
    assert not sunday.is_open and sunday.next_opening == monday(9)
    holiday, name = next_holiday("NY", MONDAY, weekdays=(1, 2, 3, 4))  # New York's, on a weekday
    status = await hours.opening_status(conn, location_id=demo.midtown_location_id, now=on(holiday, 11))
    assert not status.is_open and status.holiday == name
    assert status.next_opening == on(holiday + timedelta(days=1), 9)
    assert (await hours.opening_status(conn, location_id=demo.midtown_location_id,
                                       now=monday(11))).holiday is None


async def test_santa_monica_opens_on_sunday_in_its_own_time_zone(conn):
    demo = await seed_demo(conn)
    # 13:30 in New York is 10:30 in Santa Monica, which opens at 10 on Sundays.
    status = await hours.opening_status(conn, location_id=demo.santa_monica_location_id,
                                        now=monday(13, 30, days=-1))
    assert status.is_open
    assert status.open_until == monday(14, days=-1, tz=LA)


async def test_slots_skip_the_lunch_break(conn):
    demo = await seed_demo(conn)
    slots = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=demo.services["Dental cleaning"],
        start_date=MONDAY, end_date=MONDAY, rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(slots) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
                                  "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]
    assert {s.provider_name for s in slots} == {"Sam Rivera"}
    assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in slots)


async def test_no_slots_on_a_public_holiday_unless_the_business_opens_that_day(conn):
    demo = await seed_demo(conn)
    holiday, _ = next_holiday("NY", MONDAY, weekdays=(1, 2, 3, 4, 5))  # Midtown would be open

    async def slots_on_the_holiday():
        return local_times(await available_slots(
            conn, location_id=demo.midtown_location_id, service_id=demo.services["Dental cleaning"],
            start_date=holiday, end_date=holiday, rules=NO_LEAD, now=SUNDAY_BEFORE))

    assert await slots_on_the_holiday() == []
    await hours.add_exception(conn, location_id=demo.midtown_location_id, on_date=holiday,
                              opens_at=time(10), closes_at=time(14), reason="open on the holiday")
    assert await slots_on_the_holiday() == ["10:00", "10:30", "11:00", "11:30", "12:00", "12:30", "13:00"]
    status = await hours.opening_status(conn, location_id=demo.midtown_location_id, now=on(holiday, 11))
    assert status.is_open and status.holiday is None and status.open_until == on(holiday, 14)


@pytest.mark.parametrize("setting, closed_on", [
    ("none", set()), ("national", {"national"}), ("regional", {"national", "regional"})])
async def test_a_location_closes_on_the_public_holidays_it_observes(conn, setting, closed_on):
    shop = await make_shop(conn, slug="shop", holidays=setting)  # in New York State, open every day
    start, end = MONDAY, MONDAY + timedelta(days=364)
    national = holiday_names(country="US", region="NY", mode="national", start=start, end=end)
    regional = holiday_names(country="US", region="NY", mode="regional", start=start, end=end)
    # The first national holiday, and the first of New York's own (Lincoln's Birthday, Election Day...)
    days = {"national": min(national), "regional": min(set(regional) - set(national))}
    for scope, day in days.items():
        slots = await available_slots(conn, location_id=shop.location_id, service_id=shop.service_id,
                                      start_date=day, end_date=day, rules=NO_LEAD, now=SUNDAY_BEFORE)
        assert (slots == []) == (scope in closed_on), (scope, day)


async def test_public_holidays_need_a_calendar_the_holidays_package_knows(conn):
    shop = await make_shop(conn, slug="shop")
    with pytest.raises(InvalidHolidaySetting, match="none, national, regional"):
        await public_holidays.set_public_holidays(conn, location_id=shop.location_id, mode="yes")
    berlin = await locations.create_location(
        conn, organization_id=shop.organization_id, slug="berlin", name="Berlin", timezone="Europe/Berlin",
        address=locations.Address(line1="Unter den Linden 1", city="Berlin", country="DE"))
    with pytest.raises(InvalidInput, match="need the address's region"):
        await public_holidays.set_public_holidays(conn, location_id=berlin.id, mode="regional")
    await public_holidays.set_public_holidays(conn, location_id=berlin.id, mode="national")
    nowhere = await locations.create_location(
        conn, organization_id=shop.organization_id, slug="nowhere", name="Nowhere", timezone="UTC",
        address=locations.Address(line1="1 Road", city="Nowhere", country="ZZ"))
    with pytest.raises(UnknownHolidayCalendar, match="ZZ"):
        await public_holidays.set_public_holidays(conn, location_id=nowhere.id, mode="national")
    modes = await conn.fetch("select slug, public_holidays from locations order by slug")
    assert [tuple(r) for r in modes] == [("berlin", "national"), ("main", "none"), ("nowhere", "none")]


async def test_an_exception_replaces_the_weekly_hours_of_its_date_only(conn):
    shop = await make_shop(conn, slug="shop")
    tuesday = MONDAY + timedelta(days=1)
    await hours.add_exception(conn, location_id=shop.location_id, on_date=tuesday,
                              opens_at=time(14), closes_at=time(16), reason="staff training")
    with pytest.raises(InvalidInput):
        await hours.add_exception(conn, location_id=shop.location_id, on_date=tuesday + timedelta(days=1),
                                  opens_at=time(14))
    with pytest.raises(Conflict):  # a closed-day entry cannot sit beside special hours
        await hours.add_exception(conn, location_id=shop.location_id, on_date=tuesday)
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=MONDAY,
        end_date=MONDAY + timedelta(days=2), rules=NO_LEAD, now=SUNDAY_BEFORE)
    by_day: dict[date, list[str]] = {}
    for slot in slots:
        by_day.setdefault(slot.starts_at.date(), []).append(slot.starts_at.strftime("%H:%M"))
    assert by_day[tuesday] == ["14:00", "14:30", "15:00"]
    assert by_day[MONDAY][0] == "09:00" and by_day[tuesday + timedelta(days=1)][-1] == "16:00"


DST_DAYS = [
    (date(2026, 3, 7), datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),  # Saturday, EST (UTC-5)
    (date(2026, 3, 8), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),  # clocks went forward at 2:00
    (date(2026, 10, 31), datetime(2026, 10, 31, 13, 0, tzinfo=UTC)),  # EDT (UTC-4)
    (date(2026, 11, 1), datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),  # clocks went back at 2:00
]


async def test_opening_at_nine_stays_nine_local_across_a_dst_change(conn):
    shop = await make_shop(conn, slug="shop")
    for day, first_utc in DST_DAYS:
        slots = await available_slots(
            conn, location_id=shop.location_id, service_id=shop.service_id, start_date=day, end_date=day,
            rules=NO_LEAD, now=datetime(2026, 3, 1, tzinfo=UTC))
        assert slots[0].starts_at == first_utc, day
        assert local_times(slots) == [f"{h:02d}:{m:02d}" for h in range(9, 16) for m in (0, 30)] + ["16:00"]
        assert slots[-1].ends_at.astimezone(NY).time() == time(17)


async def test_slots_around_a_dst_change_keep_their_local_times_across_days(conn):
    shop = await make_shop(conn, slug="shop")
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=date(2026, 3, 7),
        end_date=date(2026, 3, 9), rules=NO_LEAD, now=datetime(2026, 3, 1, tzinfo=UTC))
    firsts = {}
    for slot in slots:
        firsts.setdefault(slot.starts_at.astimezone(NY).date(), slot.starts_at)
    assert [f.astimezone(NY).strftime("%H:%M") for f in firsts.values()] == ["09:00"] * 3
    assert [f.utcoffset() for f in firsts.values()] == [timedelta(hours=-5), timedelta(hours=-4),
                                                       timedelta(hours=-4)]
    status = await hours.opening_status(conn, location_id=shop.location_id, now=at(NY, 2026, 3, 8, 8, 59))
    assert not status.is_open and status.next_opening == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


async def test_lead_time_hides_slots_that_start_too_soon(conn):
    demo = await seed_demo(conn)
    slots = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=demo.services["Dental cleaning"],
        start_date=MONDAY, end_date=MONDAY, now=monday(10, 7),
        rules=BookingRules(lead_time_minutes=60))
    assert local_times(slots)[:3] == ["11:30", "13:30", "14:00"]


async def test_max_days_ahead_cuts_the_range(conn):
    shop = await make_shop(conn, slug="shop")
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=MONDAY,
        end_date=MONDAY + timedelta(days=38), now=monday(12),
        rules=BookingRules(lead_time_minutes=0, max_days_ahead=2))
    assert slots[0].starts_at == monday(12) and slots[-1].starts_at == monday(12, days=2)
    assert {s.starts_at.date() for s in slots} == {MONDAY + timedelta(days=d) for d in range(3)}


async def test_a_booked_appointment_and_its_buffer_are_not_offered(conn):
    shop = await make_shop(conn, slug="shop")
    rules = BookingRules(lead_time_minutes=0, buffer_minutes=10)
    await appointments.book(conn, location_id=shop.location_id, service_id=shop.service_id,
                            starts_at=monday(10), customer_name="Ann", customer_phone="5550101234",
                            rules=rules, now=SUNDAY_BEFORE)
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=MONDAY,
        end_date=MONDAY, rules=rules, now=SUNDAY_BEFORE)
    # 9:00-10:00 and 11:00-12:00 touch the 10:00-11:00 appointment without the 10-minute gap.
    assert local_times(slots)[:3] == ["11:30", "12:00", "12:30"]
    without_buffer = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=MONDAY,
        end_date=MONDAY, rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(without_buffer)[:3] == ["09:00", "11:00", "11:30"]


async def test_without_a_provider_named_any_qualified_provider_may_take_the_slot(conn):
    demo = await seed_demo(conn)
    exam = demo.services["New patient exam"]
    await appointments.book(conn, location_id=demo.midtown_location_id, service_id=exam, starts_at=monday(9),
                            provider_id=demo.providers["Dr. Laura Gomez"], customer_name="Ann",
                            customer_phone="5550101234", rules=NO_LEAD, now=SUNDAY_BEFORE)
    slots = await available_slots(conn, location_id=demo.midtown_location_id, service_id=exam,
                                  start_date=MONDAY, end_date=MONDAY,
                                  rules=NO_LEAD, now=SUNDAY_BEFORE)
    # Dr. Gomez comes first by name, but she is busy from 9 to 10: Dr. Patel takes those slots.
    assert [(local_times([s])[0], s.provider_name) for s in slots[:3]] == [
        ("09:00", "Dr. Maya Patel"), ("09:30", "Dr. Maya Patel"), ("10:00", "Dr. Laura Gomez")]
    gomez_only = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=exam,
        provider_id=demo.providers["Dr. Laura Gomez"], start_date=MONDAY,
        end_date=MONDAY, rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(gomez_only)[0] == "10:00"


async def test_slot_search_with_a_zero_step_raises_instead_of_looping(conn):
    demo = await seed_demo(conn)
    # limit=3 with a free first slot: without the guard a step of 0 returns that slot three times
    # (the test fails) rather than looping forever; asyncio.timeout bounds whatever else waits.
    async with asyncio.timeout(10):
        with pytest.raises(InvalidBookingRules, match="at least 5 minutes"):
            await available_slots(
                conn, location_id=demo.midtown_location_id, service_id=demo.services["Dental cleaning"],
                start_date=MONDAY, end_date=MONDAY, now=SUNDAY_BEFORE, limit=3,
                rules=BookingRules.from_policies({"slot_step_minutes": 0, "lead_time_minutes": 0}))
