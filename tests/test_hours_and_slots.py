"""Opening hours and slot search, in the location's own time zone: lunch breaks, holidays, special
hours, DST changes, existing appointments with buffers, lead time and how far ahead."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from db.demo.seed import seed_demo
from db.desk import appointments, hours
from db.desk.slots import BookingRules, available_slots
from db.errors import Conflict, InvalidInput
from tests.frontdesk_helpers import NY, at, make_shop, monday

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
    thanksgiving = monday(11, days=3)
    status = await hours.opening_status(conn, location_id=demo.midtown_location_id, now=thanksgiving)
    assert not status.is_open and status.next_opening == monday(9, days=4)


async def test_santa_monica_opens_on_sunday_in_its_own_time_zone(conn):
    demo = await seed_demo(conn)
    # 13:30 in New York is 10:30 in Santa Monica, which opens at 10 on Sundays.
    status = await hours.opening_status(conn, location_id=demo.santa_monica_location_id,
                                        now=at(NY, 2026, 11, 22, 13, 30))
    assert status.is_open
    assert status.open_until == datetime(2026, 11, 22, 22, 0, tzinfo=UTC)  # 14:00 PST


async def test_slots_skip_the_lunch_break(conn):
    demo = await seed_demo(conn)
    slots = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=demo.services["Dental cleaning"],
        start_date=date(2026, 11, 23), end_date=date(2026, 11, 23), rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(slots) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
                                  "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]
    assert {s.provider_name for s in slots} == {"Sam Rivera"}
    assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in slots)


async def test_no_slots_on_a_holiday_and_short_hours_on_christmas_eve(conn):
    demo = await seed_demo(conn)
    cleaning = demo.services["Dental cleaning"]
    thanksgiving = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=cleaning, start_date=date(2026, 11, 26),
        end_date=date(2026, 11, 26), rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert thanksgiving == []
    eve = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=cleaning, start_date=date(2026, 12, 24),
        end_date=date(2026, 12, 24), rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(eve) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00"]


async def test_an_exception_replaces_the_weekly_hours_of_its_date_only(conn):
    shop = await make_shop(conn, slug="shop")
    await hours.add_exception(conn, location_id=shop.location_id, on_date=date(2026, 11, 24),
                              opens_at=time(14), closes_at=time(16), reason="staff training")
    with pytest.raises(InvalidInput):
        await hours.add_exception(conn, location_id=shop.location_id, on_date=date(2026, 11, 25),
                                  opens_at=time(14))
    with pytest.raises(Conflict):  # a closed-day entry cannot sit beside special hours
        await hours.add_exception(conn, location_id=shop.location_id, on_date=date(2026, 11, 24))
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=date(2026, 11, 23),
        end_date=date(2026, 11, 25), rules=NO_LEAD, now=SUNDAY_BEFORE)
    by_day: dict[date, list[str]] = {}
    for slot in slots:
        by_day.setdefault(slot.starts_at.date(), []).append(slot.starts_at.strftime("%H:%M"))
    assert by_day[date(2026, 11, 24)] == ["14:00", "14:30", "15:00"]
    assert by_day[date(2026, 11, 23)][0] == "09:00" and by_day[date(2026, 11, 25)][-1] == "16:00"


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
        start_date=date(2026, 11, 23), end_date=date(2026, 11, 23), now=monday(10, 7),
        rules=BookingRules(lead_time_minutes=60))
    assert local_times(slots)[:3] == ["11:30", "13:30", "14:00"]


async def test_max_days_ahead_cuts_the_range(conn):
    shop = await make_shop(conn, slug="shop")
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=date(2026, 11, 23),
        end_date=date(2026, 12, 31), now=monday(12),
        rules=BookingRules(lead_time_minutes=0, max_days_ahead=2))
    assert slots[0].starts_at == monday(12) and slots[-1].starts_at == monday(12, days=2)
    assert {s.starts_at.day for s in slots} == {23, 24, 25}


async def test_a_booked_appointment_and_its_buffer_are_not_offered(conn):
    shop = await make_shop(conn, slug="shop")
    rules = BookingRules(lead_time_minutes=0, buffer_minutes=10)
    await appointments.book(conn, location_id=shop.location_id, service_id=shop.service_id,
                            starts_at=monday(10), customer_name="Ann", customer_phone="5550101234",
                            rules=rules, now=SUNDAY_BEFORE)
    slots = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=date(2026, 11, 23),
        end_date=date(2026, 11, 23), rules=rules, now=SUNDAY_BEFORE)
    # 9:00-10:00 and 11:00-12:00 touch the 10:00-11:00 appointment without the 10-minute gap.
    assert local_times(slots)[:3] == ["11:30", "12:00", "12:30"]
    without_buffer = await available_slots(
        conn, location_id=shop.location_id, service_id=shop.service_id, start_date=date(2026, 11, 23),
        end_date=date(2026, 11, 23), rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(without_buffer)[:3] == ["09:00", "11:00", "11:30"]


async def test_without_a_provider_named_any_qualified_provider_may_take_the_slot(conn):
    demo = await seed_demo(conn)
    exam = demo.services["New patient exam"]
    await appointments.book(conn, location_id=demo.midtown_location_id, service_id=exam, starts_at=monday(9),
                            provider_id=demo.providers["Dr. Laura Gomez"], customer_name="Ann",
                            customer_phone="5550101234", rules=NO_LEAD, now=SUNDAY_BEFORE)
    slots = await available_slots(conn, location_id=demo.midtown_location_id, service_id=exam,
                                  start_date=date(2026, 11, 23), end_date=date(2026, 11, 23),
                                  rules=NO_LEAD, now=SUNDAY_BEFORE)
    # Dr. Gomez comes first by name, but she is busy from 9 to 10: Dr. Patel takes those slots.
    assert [(local_times([s])[0], s.provider_name) for s in slots[:3]] == [
        ("09:00", "Dr. Maya Patel"), ("09:30", "Dr. Maya Patel"), ("10:00", "Dr. Laura Gomez")]
    gomez_only = await available_slots(
        conn, location_id=demo.midtown_location_id, service_id=exam,
        provider_id=demo.providers["Dr. Laura Gomez"], start_date=date(2026, 11, 23),
        end_date=date(2026, 11, 23), rules=NO_LEAD, now=SUNDAY_BEFORE)
    assert local_times(gomez_only)[0] == "10:00"
