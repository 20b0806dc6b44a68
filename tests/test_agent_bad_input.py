"""The unluckiest caller, in LiveKit's text mode (real tools, real Postgres, real recorder, a
scripted model): impossible times, far dates, long names and odd dialed numbers get a short
spoken answer and write nothing; a booking stuck behind a lock is "slow" within 3 s; a second job
in the same room continues the call's record instead of colliding with it."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from agent.call import Caller
from agent.opening import open_call
from agent.routing import NoRoute, RouteCache, route_call
from agent.scripted import Step
from agent.settings import Settings
from db.demo.data import ORGANIZATION
from db.demo.seed import NEW_YORK_NUMBER
from db.pool import connection_options, create_pool
from tests.clock import local, next_open_weekday, today
from tests.harness import CALLER_NUMBER, open_text_call, stored_call

pytestmark = pytest.mark.db


def book(start: str, name: str = "Jane Doe") -> Step:
    return Step(calls=[("book_appointment", {"service": "cleaning", "start_time": start,
                                             "customer_name": name})])


async def appointment_count(pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("select count(*) from appointments")


async def refused_booking(call, start: str, name: str = "Jane Doe") -> str:
    """The caller asks for `start`; the tool's answer, which must be an error."""
    result = await call.say("book me a cleaning", book(start, name), Step(text="Sorry."))
    result.expect.next_event().is_function_call(name="book_appointment")
    return result.expect.next_event().is_function_call_output(is_error=True).event().item.output


def spring_forward() -> date:
    """The next US spring-forward Sunday (the second Sunday of March) after today."""
    for year in (today().year, today().year + 1):
        first = date(year, 3, 1)
        sunday = first + timedelta(days=(6 - first.weekday()) % 7 + 7)
        if sunday > today():
            return sunday
    raise AssertionError("unreachable")


@pytest.mark.parametrize("start, answer", [
    ("9999-12-31T10:00", "too far ahead"),
    (f"{spring_forward()}T02:30", "does not exist"),
    (f"{next_open_weekday()}T10:00-08:00", "local time"),
    (f"{today() - timedelta(days=3)}T10:00", "in the past"),
    (f"{today() + timedelta(days=400)}T10:00", "at most 90 days ahead"),
])
async def test_an_impossible_time_is_refused_aloud_and_nothing_is_written(pool, recorder, start, answer):
    call = await open_text_call(pool, recorder)
    assert answer in await refused_booking(call, start)
    await call.hang_up(recorder)
    assert await appointment_count(pool) == 0
    assert recorder.stats().dead_lettered == 0


async def test_a_far_day_asked_for_availability_is_refused_aloud(pool, recorder):
    call = await open_text_call(pool, recorder)
    result = await call.say("anything free in the year 9999?", Step(calls=[(
        "check_availability", {"service": "cleaning", "date": "9999-12-31"})]), Step(text="No."))
    result.expect.next_event().is_function_call(name="check_availability")
    output = result.expect.next_event().is_function_call_output(is_error=True)
    assert "too far ahead" in output.event().item.output
    await call.hang_up(recorder)


async def test_a_name_over_100_characters_is_refused_and_nothing_is_written(pool, recorder):
    call = await open_text_call(pool, recorder)
    answer = await refused_booking(call, local(next_open_weekday(), "10:00"), "J" * 101)
    assert "at most 100 characters" in answer
    await call.hang_up(recorder)
    assert await appointment_count(pool) == 0


@pytest.mark.parametrize("dialed", ["anonymous", "100", "sip:100@pbx.example.com", "+1", ""])
async def test_an_odd_dialed_number_falls_back_to_the_default_organisation(pool, tenant, dialed):
    caller = Caller(identity="caller", number=CALLER_NUMBER, dialed_number=dialed, is_sip=True)
    async with pool.acquire() as conn:
        route = await route_call(conn, caller=caller, metadata={"location_number": dialed},
                                 default_organization_slug=ORGANIZATION["slug"])
    assert route.routed_by == "default" and route.organization.id == tenant.organization_id


async def test_an_odd_dialed_number_without_a_default_is_a_clear_no_route(pool, recorder, tenant):
    caller = Caller(identity="caller", number=CALLER_NUMBER, dialed_number="anonymous", is_sip=True)
    with pytest.raises(NoRoute, match="DEFAULT_ORGANIZATION_SLUG"):
        await open_call(pool, recorder, caller=caller, session_id="RM_anonymous", room_name="r")
    desk, route = await open_call(pool, recorder, caller=caller, session_id="RM_anonymous_2",
                                  room_name="r", default_organization_slug=ORGANIZATION["slug"])
    assert route.routed_by == "default" and desk.organization_id == tenant.organization_id
    assert await recorder.flush(10)
    assert (await stored_call(pool, "RM_anonymous")).call.dialed_number == "anonymous"


async def test_a_booking_stuck_behind_a_lock_is_slow_within_3_seconds(db_dsn, pool, recorder):
    timed = await create_pool(db_dsn, min_size=0, max_size=4, **connection_options(Settings()))
    try:
        call = await open_text_call(timed, recorder)
        assert await recorder.flush(10)
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("select 1 from locations where id = $1 for update",
                                 call.desk.location.id)
            started = time.monotonic()
            answer = await refused_booking(call, local(next_open_weekday(), "10:00"))
            elapsed = time.monotonic() - started
        assert "slow right now" in answer
        assert elapsed < 3.5
        await call.hang_up(recorder)
    finally:
        await timed.close()
    assert await appointment_count(pool) == 0


async def test_a_second_job_in_the_same_room_continues_the_calls_record(pool, recorder):
    web = Caller(identity="web-visitor", number=None, dialed_number=NEW_YORK_NUMBER, is_sip=False)
    first = await open_text_call(pool, recorder, caller=web)
    session_id = first.desk.session_id
    human = Step(calls=[("transfer_to_human", {"reason": "wants a person"})])
    await first.say("hello, first job", human, Step(text="First answer."))
    await first.hang_up(recorder)

    second = await open_text_call(pool, recorder, caller=web, session_id=session_id)
    await second.say("hello again, second job", human, Step(text="Second answer."))
    await second.hang_up(recorder)

    assert recorder.stats().dead_lettered == 0
    call = await stored_call(pool, session_id)
    assert [(m.role, m.content) for m in call.messages] == [
        ("user", "hello, first job"), ("assistant", "First answer."),
        ("user", "hello again, second job"), ("assistant", "Second answer.")]
    numbers = [m.sequence_number for m in call.messages]
    assert numbers == sorted(set(numbers))
    # Each job's escalation (an event numbered by a per-call counter) is stored.
    assert call.event_types.count("escalation") == 2
    turns = [e.turn_index for e in call.events if e.event_type == "escalation"]
    assert turns[1] > turns[0]



async def test_the_route_cache_answers_only_a_call_that_would_route_the_same_way(pool, tenant):
    routes = RouteCache()
    odd = Caller(identity="caller", dialed_number="anonymous", is_sip=True)
    async with pool.acquire() as conn:
        route = await route_call(conn, caller=odd, metadata={},
                                 default_organization_slug=ORGANIZATION["slug"])
    routes.remember(route, caller=odd, metadata={}, default_organization_slug=ORGANIZATION["slug"])
    assert routes.recall(caller=odd, metadata={}, default_organization_slug=ORGANIZATION["slug"]) == route
    # A line nobody has called since the process started is not guessed from the default.
    line = Caller(identity="caller", dialed_number=NEW_YORK_NUMBER, is_sip=True)
    assert routes.recall(caller=line, metadata={}, default_organization_slug=ORGANIZATION["slug"]) is None
