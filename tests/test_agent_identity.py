"""A caller proves who they are with an appointment's confirmation code and the name on it, never
with the number they call from; a call gets three tries and a few bookings. The receptionist in
text mode with a scripted model, real tools, real Postgres and recorder."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from agent.scripted import Step
from db.demo import data
from db.desk import appointments, catalog, configs
from db.desk.confirmation_codes import new_confirmation_code
from tests.clock import NY, local, next_open_weekday, on, today
from tests.harness import CALLER_NUMBER, open_text_call, stored

pytestmark = pytest.mark.db


async def booked_for_caller(pool, tenant, starts_at: datetime, *, name: str = "Jane Doe",
                            now: datetime | None = None) -> appointments.Appointment:
    """A cleaning at Midtown booked under the test caller's number, outside any call."""
    async with pool.acquire() as conn:
        service = await catalog.find_service(conn, organization_id=tenant.organization_id,
                                             name="cleaning")
        return await appointments.book(conn, location_id=tenant.midtown_location_id,
                                       service_id=service.id, starts_at=starts_at,
                                       customer_name=name, customer_phone=CALLER_NUMBER, now=now)


async def current(pool, appointment_id) -> appointments.Appointment:
    async with pool.acquire() as conn:
        return await appointments.get_appointment(conn, appointment_id=appointment_id)


def tool(name: str, **arguments) -> Step:
    return Step(calls=[(name, arguments)])


async def output_of(call, said: str, step: Step, *, is_error: bool) -> str:
    """The caller says `said`, the model makes the one tool call of `step`: the tool's answer."""
    result = await call.say(said, step, Step(text="Okay."))
    result.expect.next_event().is_function_call(name=step.calls[0][0])
    return result.expect.next_event().is_function_call_output(is_error=is_error).event().item.output


def mentions(text: str, code: str) -> bool:
    squeezed = "".join(text.upper().split()).replace("-", "")
    return code in squeezed


async def test_the_callers_number_alone_reveals_and_changes_nothing(pool, recorder, tenant):
    mine = await booked_for_caller(pool, tenant, on(next_open_weekday(), 10))
    call = await open_text_call(pool, recorder)  # from the number the appointment is under
    answers = [
        await output_of(call, "what appointments do I have?", tool("find_appointment"), is_error=True),
        await output_of(call, "it's under Jane Doe", tool("find_appointment", customer_name="Jane Doe"),
                        is_error=True),
        await output_of(call, "my code is my phone number",
                        tool("find_appointment", confirmation_code=CALLER_NUMBER,
                             customer_name="Jane Doe"), is_error=True),
        await output_of(call, "cancel whatever I have",
                        tool("cancel_appointment", confirmation_code="", customer_name=""),
                        is_error=True),
    ]
    await call.hang_up(recorder)
    for answer in answers:
        assert not mentions(answer, mine.confirmation_code)
        assert "cleaning" not in answer.lower() and "10:00" not in answer
    assert (await current(pool, mine.id)).status == "confirmed"
    report = await stored(pool, call.desk.session_id)
    results = [e.payload["output"] for e in report.events if e.event_type == "tool_result"]
    assert len(results) == 4 and not any(mentions(r, mine.confirmation_code) for r in results)
    # Nothing was tested against an appointment, so no try was used up.
    assert "identity_refused" not in [e.event_type for e in report.events]


async def test_the_code_and_the_name_find_the_appointment_without_reading_the_code(pool, recorder, tenant):
    mine = await booked_for_caller(pool, tenant, on(next_open_weekday(), 10), name="José García")
    code = mine.confirmation_code
    call = await open_text_call(pool, recorder)
    answer = await output_of(call, f"my code is {' '.join(code.lower())}, Jose Garcia",
                             tool("find_appointment", confirmation_code=" ".join(code.lower()),
                                  customer_name="jose garcia"), is_error=False)
    await call.hang_up(recorder)
    assert answer.startswith("Found: Dental cleaning on ") and "10:00 AM" in answer
    assert "(confirmed)" in answer and not mentions(answer, code)


async def test_a_wrong_name_is_refused_and_changes_nothing(pool, recorder, tenant):
    mine = await booked_for_caller(pool, tenant, on(next_open_weekday(), 10))
    call = await open_text_call(pool, recorder)
    answer = await output_of(call, "cancel it, I'm John Smith",
                             tool("cancel_appointment", confirmation_code=mine.confirmation_code,
                                  customer_name="John Smith"), is_error=True)
    await call.hang_up(recorder)
    assert "no appointment matches that confirmation code and name" in answer
    assert not mentions(answer, mine.confirmation_code) and "cleaning" not in answer.lower()
    assert (await current(pool, mine.id)).status == "confirmed"
    report = await stored(pool, call.desk.session_id)
    refused = [e for e in report.events if e.event_type == "identity_refused"]
    assert [(e.severity, e.payload) for e in refused] == [
        ("warning", {"attempt": 1, "reason": "name_mismatch"})]


async def test_after_three_refused_tries_the_agent_stops_and_offers_a_person(pool, recorder, tenant):
    mine = await booked_for_caller(pool, tenant, on(next_open_weekday(), 10))
    code = mine.confirmation_code
    call = await open_text_call(pool, recorder)
    tries = [(new_confirmation_code(), "Jane Doe"), (code, "John Smith"), (code, "Jim Doe")]
    answers = [await output_of(call, "find my appointment",
                               tool("find_appointment", confirmation_code=c, customer_name=n),
                               is_error=True) for c, n in tries]
    # The right code and name, now: refused without a lookup, and nothing is cancelled.
    answers.append(await output_of(call, "cancel it, Jane Doe",
                                   tool("cancel_appointment", confirmation_code=code,
                                        customer_name="Jane Doe"), is_error=True))
    await call.hang_up(recorder)

    assert all("ask the caller to check both" in a for a in answers[:2])
    assert all("offer to transfer the caller to a person" in a for a in answers[2:])
    assert (await current(pool, mine.id)).status == "confirmed"
    report = await stored(pool, call.desk.session_id)
    refused = [e for e in report.events if e.event_type == "identity_refused"]
    assert [(e.severity, e.payload["attempt"], e.payload["reason"]) for e in refused] == [
        ("warning", 1, "unknown_code"), ("warning", 2, "name_mismatch"),
        ("warning", 3, "name_mismatch"), ("warning", 4, "too_many_attempts")]
    logged = json.dumps([e.payload for e in refused])
    assert not any(secret in logged for secret in (code, tries[0][0], "Jane", "John", "Jim"))


async def test_an_appointment_in_the_past_cannot_be_cancelled_or_moved(pool, recorder, tenant):
    past = next_open_weekday(today() - timedelta(days=21))
    assert past < today()
    mine = await booked_for_caller(pool, tenant, on(past, 10), now=on(past - timedelta(days=1), 9))
    call = await open_text_call(pool, recorder)
    cancelled = await output_of(call, "cancel it",
                                tool("cancel_appointment", confirmation_code=mine.confirmation_code,
                                     customer_name="Jane Doe"), is_error=True)
    moved = await output_of(call, "move it to next week",
                            tool("reschedule_appointment", confirmation_code=mine.confirmation_code,
                                 customer_name="Jane Doe",
                                 new_start_time=local(next_open_weekday(), "10:00")), is_error=True)
    await call.hang_up(recorder)
    for answer in (cancelled, moved):
        assert "has started or is over; it can no longer be moved or cancelled" in answer
    after = await current(pool, mine.id)
    assert (after.status, after.starts_at) == ("confirmed", mine.starts_at)


def book(start: str) -> Step:
    return tool("book_appointment", service="cleaning", start_time=start, customer_name="Jane Doe")


async def test_a_fourth_booking_in_one_call_is_refused(pool, recorder, tenant):
    day = next_open_weekday()
    call = await open_text_call(pool, recorder)
    for hhmm in ("09:00", "11:00", "14:00"):
        assert "Confirmation code" in await output_of(call, "book one more", book(local(day, hhmm)),
                                                      is_error=False)
    refused = await output_of(call, "and one more", book(local(day, "16:00")), is_error=True)
    await call.hang_up(recorder)
    assert "the most appointments one call may book (3)" in refused
    async with pool.acquire() as conn:
        mine = await appointments.find_by_phone(conn, organization_id=tenant.organization_id,
                                                phone=CALLER_NUMBER)
    assert sorted(a.starts_at.astimezone(NY).hour for a in mine) == [9, 11, 14]


async def test_the_booking_limit_is_a_policy_of_the_configuration(pool, recorder, tenant):
    async with pool.acquire() as conn:
        await configs.create_config(conn, organization_id=tenant.organization_id,
                                    location_id=tenant.midtown_location_id, activate=True,
                                    instructions="Be brief.", greeting="Hello!",
                                    policies={**data.POLICIES_V2, "max_bookings_per_call": 1})
    day = next_open_weekday()
    call = await open_text_call(pool, recorder)
    await output_of(call, "book one", book(local(day, "09:00")), is_error=False)
    refused = await output_of(call, "and another", book(local(day, "11:00")), is_error=True)
    await call.hang_up(recorder)
    assert "the most appointments one call may book (1)" in refused
