"""The receptionist in LiveKit's text mode: real tools, real Postgres, real recorder; only the
model is scripted. Each test asserts on what the session did and on the rows it left."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from agent.call import Caller
from agent.receptionist import greeting
from agent.scripted import Step
from agent.session import greet
from agent.speech import spoken_day
from db.demo.seed import ESCALATION_NUMBER, LOS_ANGELES_NUMBER, NEW_YORK_NUMBER
from db.desk import appointments, catalog, configs
from tests.clock import LA, NY, local, next_holiday, next_open_weekday, today
from tests.harness import CALLER_NUMBER, open_text_call, stored

pytestmark = pytest.mark.db


def book(service: str, start: str, name: str = "Jane Doe") -> Step:
    return Step(calls=[("book_appointment", {"service": service, "start_time": start,
                                             "customer_name": name})])


async def appointments_of(pool, organization_id):
    async with pool.acquire() as conn:
        return await appointments.find_by_phone(conn, organization_id=organization_id,
                                                phone=CALLER_NUMBER)


async def test_booking_writes_the_appointment_the_call_and_its_events(pool, recorder, tenant):
    call = await open_text_call(pool, recorder)
    day = next_open_weekday()
    result = await call.say(
        f"Book me a cleaning on {day} at ten, I'm Jane Doe",
        book("cleaning", local(day, "10:00")), Step(text="You're booked."))
    result.expect.next_event().is_function_call(name="book_appointment")
    output = result.expect.next_event().is_function_call_output(is_error=False)
    result.expect.next_event().is_message(role="assistant")
    assert "Confirmation code" in output.event().item.output
    await call.hang_up(recorder)

    booked = await appointments_of(pool, tenant.organization_id)
    assert [(a.service_name, a.starts_at.astimezone(NY).hour, a.customer_name) for a in booked] == [
        ("Dental cleaning", 10, "Jane Doe")]
    report = await stored(pool, call.desk.session_id)
    assert booked[0].call_id == report.call.id
    assert [a["confirmation_code"] for a in report.appointments] == [booked[0].confirmation_code]
    assert report.call.status == "completed"
    assert report.call.outcome == "appointment_booked"
    assert report.call.end_reason == "caller_hung_up"
    assert [e.event_type for e in report.events] == ["tool_call", "appointment_booked", "tool_result"]
    assert [(m.role, m.content) for m in report.messages] == [
        ("user", f"Book me a cleaning on {day} at ten, I'm Jane Doe"), ("assistant", "You're booked.")]
    assert report.messages[1].tokens_used > 0
    assert report.call.total_tokens_used == sum(m.tokens_used for m in report.messages)


async def test_reschedule_moves_the_same_appointment_and_frees_the_old_time(pool, recorder, tenant):
    day = next_open_weekday()
    call = await open_text_call(pool, recorder)
    await call.say("book a cleaning", book("cleaning", local(day, "10:00")), Step(text="Booked."))
    [original] = await appointments_of(pool, tenant.organization_id)

    result = await call.say(
        "can you move it to two thirty",
        Step(calls=[("reschedule_appointment", {"confirmation_code": original.confirmation_code,
                                                "customer_name": "Jane Doe",
                                                "new_start_time": local(day, "14:30")})]),
        Step(text="Moved."))
    result.expect.next_event().is_function_call(name="reschedule_appointment")
    result.expect.next_event().is_function_call_output(is_error=False)
    await call.hang_up(recorder)

    [moved] = await appointments_of(pool, tenant.organization_id)
    assert moved.id == original.id and moved.confirmation_code == original.confirmation_code
    assert moved.starts_at.astimezone(NY).strftime("%H:%M") == "14:30"
    report = await stored(pool, call.desk.session_id)
    assert moved.last_call_id == report.call.id
    assert report.call.outcome == "appointment_booked"  # the strongest of the call's outcomes
    assert "appointment_rescheduled" in [e.event_type for e in report.events]


async def test_cancel_frees_the_slot(pool, recorder, tenant):
    day = next_open_weekday()
    call = await open_text_call(pool, recorder)
    await call.say("book a cleaning", book("cleaning", local(day, "11:00")), Step(text="Booked."))
    [booked] = await appointments_of(pool, tenant.organization_id)
    result = await call.say(
        "please cancel it",
        Step(calls=[("cancel_appointment", {"confirmation_code": booked.confirmation_code,
                                            "customer_name": "Jane Doe"})]),
        Step(text="Cancelled."))
    result.expect.next_event().is_function_call(name="cancel_appointment")
    result.expect.next_event().is_function_call_output(is_error=False)
    await call.hang_up(recorder)

    assert await appointments_of(pool, tenant.organization_id) == []
    async with pool.acquire() as conn:
        again = await appointments.get_appointment(conn, appointment_id=booked.id)
    assert again.status == "cancelled"
    report = await stored(pool, call.desk.session_id)
    assert [e.event_type for e in report.events].count("appointment_cancelled") == 1


async def test_a_knowledge_question_is_answered_from_the_knowledge_base(pool, recorder, tenant):
    call = await open_text_call(pool, recorder)
    result = await call.say("do you have parking?",
                            Step(calls=[("answer_question", {"question": "do you have parking"})]),
                            Step(text="There's a garage next door."))
    result.expect.next_event().is_function_call(name="answer_question")
    output = result.expect.next_event().is_function_call_output(is_error=False)
    assert "garage" in output.event().item.output.lower()
    await call.hang_up(recorder)
    report = await stored(pool, call.desk.session_id)
    assert report.call.outcome == "information_provided"


async def test_a_web_caller_asking_for_a_human_is_told_politely_and_not_transferred(pool, recorder):
    web_caller = Caller(identity="web-visitor", number=None, dialed_number=NEW_YORK_NUMBER,
                        is_sip=False)
    call = await open_text_call(pool, recorder, caller=web_caller)
    result = await call.say("I want to talk to a person",
                            Step(calls=[("transfer_to_human", {"reason": "wants a person"})]),
                            Step(text="I'm sorry, I can't transfer web calls."))
    result.expect.next_event().is_function_call(name="transfer_to_human")
    output = result.expect.next_event().is_function_call_output(is_error=True)
    assert "only work on phone calls" in output.event().item.output
    await call.hang_up(recorder)
    report = await stored(pool, call.desk.session_id)
    escalations = [e for e in report.events if e.event_type == "escalation"]
    assert [(e.payload["to"], e.payload["sip"]) for e in escalations] == [(ESCALATION_NUMBER, False)]
    assert "transfer" not in [e.event_type for e in report.events]
    assert report.call.outcome == "no_action"


async def test_a_public_holiday_is_refused_by_name_and_nothing_is_written(pool, recorder, tenant):
    # Santa Monica opens every day of the week, so its next public holiday (California's, from the
    # holidays package) is a day it would otherwise be open; with at most ~70 days between two of
    # them it is always inside the 90 days ahead the demo books. (New York's gap from February to
    # Memorial Day is longer than that, which is why this is not Midtown.)
    holiday, name = next_holiday("CA", today(LA) + timedelta(days=1))
    caller = Caller(identity="caller", number=CALLER_NUMBER, dialed_number=LOS_ANGELES_NUMBER, is_sip=True)
    call = await open_text_call(pool, recorder, caller=caller)
    result = await call.say(f"book a cleaning on {holiday} at ten",
                            book("cleaning", local(holiday, "10:00")), Step(text="We're closed then."))
    result.expect.next_event().is_function_call(name="book_appointment")
    output = result.expect.next_event().is_function_call_output(is_error=True)
    assert f"closed on {holiday.strftime('%A %B %-d')} for {name}" in output.event().item.output
    await call.hang_up(recorder)
    assert await appointments_of(pool, tenant.organization_id) == []
    report = await stored(pool, call.desk.session_id)
    assert "appointment_booked" not in [e.event_type for e in report.events]


async def _fill_all_but(pool, tenant, day, hhmm: str, leave: int) -> int:
    """Book the cleaning slot directly for every provider but `leave` of them."""
    starts_at = datetime.fromisoformat(local(day, hhmm)).replace(tzinfo=NY)
    async with pool.acquire() as conn:
        service = await catalog.find_service(conn, organization_id=tenant.organization_id,
                                             name="cleaning")
        providers = [p for p in await catalog.list_providers(conn, location_id=tenant.midtown_location_id)
                     if service.id in p.service_ids]
        for provider in providers[:len(providers) - leave]:
            await appointments.book(conn, location_id=tenant.midtown_location_id,
                                    service_id=service.id, provider_id=provider.id,
                                    starts_at=starts_at, customer_name="Someone Else",
                                    customer_phone="+12125550100")
    return len(providers)


async def test_a_taken_slot_is_refused_and_nothing_is_written(pool, recorder, tenant):
    day = next_open_weekday()
    await _fill_all_but(pool, tenant, day, "10:00", leave=0)
    call = await open_text_call(pool, recorder)
    result = await call.say("book a cleaning at ten", book("cleaning", local(day, "10:00")),
                            Step(text="That time is taken."))
    result.expect.next_event().is_function_call(name="book_appointment")
    output = result.expect.next_event().is_function_call_output(is_error=True)
    assert output.event().item.output == f"{spoken_day(day)} at 10:00 AM is no longer available"
    await call.hang_up(recorder)
    assert await appointments_of(pool, tenant.organization_id) == []


async def test_two_sessions_racing_for_the_last_slot_book_it_once(pool, recorder, tenant):
    day = next_open_weekday()
    await _fill_all_but(pool, tenant, day, "15:00", leave=1)
    first, second = await open_text_call(pool, recorder), await open_text_call(pool, recorder)
    results = await asyncio.gather(
        first.say("book three pm", book("cleaning", local(day, "15:00"), "First Caller"),
                  Step(text="Done.")),
        second.say("book three pm", book("cleaning", local(day, "15:00"), "Second Caller"),
                   Step(text="Done.")),
    )
    errors = []
    for result in results:
        result.expect.next_event().is_function_call(name="book_appointment")
        errors.append(result.expect.next_event().is_function_call_output().event().item.is_error)
    assert sorted(errors) == [False, True]
    await first.hang_up(recorder)
    await second.hang_up(recorder)
    booked = await appointments_of(pool, tenant.organization_id)
    assert len(booked) == 1
    winner = first if not errors[0] else second
    assert booked[0].call_id == winner.desk.call_id


async def booked_at_santa_monica(pool, recorder, tenant, day):
    """A cleaning booked at 10:00 by a caller who dialed Santa Monica."""
    to_santa_monica = Caller(identity="caller", number=CALLER_NUMBER, dialed_number=LOS_ANGELES_NUMBER,
                             is_sip=True)
    call = await open_text_call(pool, recorder, caller=to_santa_monica)
    await call.say("book a cleaning", book("cleaning", local(day, "10:00")), Step(text="Booked."))
    await call.hang_up(recorder)
    [booked] = await appointments_of(pool, tenant.organization_id)
    assert booked.location_id == tenant.santa_monica_location_id
    return booked


async def move_from_midtown(pool, recorder, original, new_start: str, answer: str, *, refused: bool):
    """The caller phones the Midtown line (New York time) and moves `original` to `new_start`."""
    call = await open_text_call(pool, recorder)
    result = await call.say(
        "move my Santa Monica cleaning to eleven thirty",
        Step(calls=[("reschedule_appointment", {"confirmation_code": original.confirmation_code,
                                                "customer_name": "Jane Doe",
                                                "new_start_time": new_start})]),
        Step(text=answer))
    result.expect.next_event().is_function_call(name="reschedule_appointment")
    result.expect.next_event().is_function_call_output(is_error=refused)
    await call.hang_up(recorder)


async def test_a_reschedule_from_another_line_keeps_the_appointments_own_time_zone(pool, recorder, tenant):
    day = next_open_weekday()
    original = await booked_at_santa_monica(pool, recorder, tenant, day)
    await move_from_midtown(pool, recorder, original, local(day, "11:30"), "Moved.", refused=False)
    [moved] = await appointments_of(pool, tenant.organization_id)
    assert moved.id == original.id
    assert moved.starts_at.astimezone(LA).strftime("%H:%M") == "11:30"


async def test_a_reschedule_from_another_line_follows_the_appointments_location_rules(pool, recorder, tenant):
    day = next_open_weekday()
    original = await booked_at_santa_monica(pool, recorder, tenant, day)
    async with pool.acquire() as conn:  # Santa Monica now books one day ahead at most
        await configs.create_config(conn, organization_id=tenant.organization_id,
                                    location_id=tenant.santa_monica_location_id, greeting="Hi",
                                    instructions="Be brief.", policies={"max_days_ahead": 1},
                                    activate=True)
    # Midtown's rules would allow it.
    await move_from_midtown(pool, recorder, original, local(day, "11:30"),
                            "I can't move it that far ahead.", refused=True)
    [unmoved] = await appointments_of(pool, tenant.organization_id)
    assert unmoved.starts_at == original.starts_at


@pytest.mark.parametrize("text", ["Say {0}", "5{", '{"a": 1}', "Hi from {business} {"])
async def test_configuration_text_with_braces_is_spoken_literally(pool, recorder, tenant, text):
    async with pool.acquire() as conn:
        await configs.create_config(conn, organization_id=tenant.organization_id,
                                    location_id=tenant.midtown_location_id, greeting=text,
                                    instructions=f"Quote {text} as written.", activate=True)
    call = await open_text_call(pool, recorder)
    business = "Bright Smile Dental"
    said = text.replace("{business}", business)  # our one placeholder in it, the rest as written
    assert f"Quote {said} as written." in call.session.current_agent.instructions
    await greet(call.session, call.desk, greeting(call.desk, business=business))
    await call.hang_up(recorder)
    report = await stored(pool, call.desk.session_id)
    assert [(m.role, m.content) for m in report.messages] == [("assistant", said)]
