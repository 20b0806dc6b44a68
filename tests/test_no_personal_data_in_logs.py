"""Logs at INFO and above never carry what a caller said or who they are: a text-mode call that
books, hears and moves an appointment (its confirmation code and name said back), and gets one
code wrong, logs none of the caller's number, the code, the name or the transcript."""

from __future__ import annotations

import logging

import pytest

from agent.scripted import Step
from db.desk import appointments
from tests.clock import local, next_open_weekday
from tests.harness import CALLER_NUMBER, open_text_call

pytestmark = pytest.mark.db

NAME = "Zelda Quartermaine"
ASKED = "I would like my teeth cleaned please, my gums hurt since Tuesday"


async def test_a_booking_call_logs_no_number_code_name_or_transcript(pool, recorder, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    day = next_open_weekday()
    call = await open_text_call(pool, recorder)
    await call.say(ASKED, Step(calls=[("book_appointment", {
        "service": "cleaning", "start_time": local(day, "10:00"), "customer_name": NAME})]),
        Step(text="You're booked."))
    async with pool.acquire() as conn:
        [booked] = await appointments.find_by_phone(conn, organization_id=tenant.organization_id,
                                                    phone=CALLER_NUMBER)
    code = booked.confirmation_code
    await call.say(f"my code is {code}, move it to two", Step(calls=[("reschedule_appointment", {
        "confirmation_code": code, "customer_name": NAME, "new_start_time": local(day, "14:00")})]),
        Step(text="Moved."))
    await call.say("and the other one", Step(calls=[("cancel_appointment", {
        "confirmation_code": "ZZZZZZ", "customer_name": NAME})]), Step(text="Sorry."))
    # The model passes on the caller's words: a service we do not offer, said back in the error.
    await call.say("also whitening because my gums hurt", Step(calls=[("book_appointment", {
        "service": "whitening, my gums hurt", "start_time": local(day, "11:00"),
        "customer_name": NAME})]), Step(text="We don't do that."))
    # The model gets an argument's type wrong: pydantic's error quotes the value it was given.
    await call.say("book it for me", Step(calls=[("book_appointment", {
        "service": "cleaning", "start_time": local(day, "12:00"), "customer_name": [NAME]})]),
        Step(text="Sorry."))
    await call.hang_up(recorder)

    said = [rendered(r) for r in caplog.records if r.levelno >= logging.INFO]
    assert any("closed: caller_hung_up" in line for line in said)  # the call did log, at INFO
    secrets = {"number": CALLER_NUMBER.lstrip("+"), "code": code, "name": "Quartermaine",
               "transcript": "gums hurt"}
    leaks = {what: [line for line in said if value in line] for what, value in secrets.items()}
    assert leaks == {what: [] for what in secrets}
    # They were there to leak: LiveKit's DEBUG records carry the transcript (lk.pii.text).
    assert any("gums hurt" in rendered(r) for r in caplog.records if r.levelno == logging.DEBUG)


def rendered(record: logging.LogRecord) -> str:
    """The record as LiveKit's formatters print it: the message, every extra attribute and the
    traceback."""
    extras = {k: v for k, v in record.__dict__.items() if k not in STANDARD}
    trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return f"{record.levelname} {record.name}: {record.getMessage()} {extras!r} {trace}"


STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
