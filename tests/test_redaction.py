"""The redactor (db/privacy/redaction.py) and redaction at write time (organizations.redact_pii):
what is stored is redacted, what the conversation sees is not."""

from __future__ import annotations

import pytest

from agent.scripted import Step
from db.privacy.redaction import Redactor, luhn_valid, spoken_digits
from tests.clock import today
from tests.harness import open_text_call, stored

THIS_YEAR = today().year
redact = Redactor(this_year=THIS_YEAR)


@pytest.mark.parametrize(("text", "expected", "kinds"), [
    ("call me at (212) 555-0143 please", "call me at [PHONE] please", {"PHONE"}),
    ("or +44 20 7946 0958 in London", "or [PHONE] in London", {"PHONE"}),
    ("write to jane.doe+x@example.co.uk", "write to [EMAIL]", {"EMAIL"}),
    ("card 4111 1111 1111 1111 expires", "card [CARD] expires", {"CARD"}),
    ("ssn 123-45-6789.", "ssn [SSN].", {"SSN"}),
    ("born 03/14/1985", "born [DOB]", {"DOB"}),
    ("born on March 14th, 1985 in Ohio", "born on [DOB] in Ohio", {"DOB"}),
    ("it's six four six five five five zero one four three", "it's [PHONE]", {"PHONE"}),
    ("six four six double five five oh one four three!", "[PHONE]!", {"PHONE"}),
    ("four one one one one one one one one one one one one one one one", "[CARD]", {"CARD"}),
])
def test_each_kind_becomes_its_typed_placeholder(text, expected, kinds):
    result = redact(text)
    assert (result.text, set(result.kinds)) == (expected, kinds)


@pytest.mark.parametrize("text", [
    "Book me a cleaning on Monday at ten, for two people",
    f"the appointment is on March 3, {THIS_YEAR + 1} at 10:30",
    "confirmation code K7M2QP, room 12",
    "card 4111 1111 1111 1112 fails Luhn's check",
    "one two three",  # too short to be a number of anyone's
])
def test_what_is_not_personal_stays(text):
    result = redact(text)
    assert (result.text, result.kinds) == (text, frozenset())


def test_luhn_and_spoken_digits():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert spoken_digits("Six four, six - double five oh") == "646550"


def test_a_json_value_keeps_its_shape_and_reports_kinds_not_values():
    value, kinds = redact.value({"name": "book", "arguments": {"phone": "212-555-0143",
                                                                "n": 2, "tags": ["a@b.io", None]}})
    assert value == {"name": "book", "arguments": {"phone": "[PHONE]", "n": 2,
                                                    "tags": ["[EMAIL]", None]}}
    assert kinds == {"PHONE", "EMAIL"}


@pytest.mark.db
async def test_with_redact_pii_the_rows_are_redacted_and_the_model_sees_the_real_text(
        pool, recorder, tenant):
    async with pool.acquire() as conn:
        await conn.execute("update organizations set redact_pii = true where id = $1",
                           tenant.organization_id)
    call = await open_text_call(pool, recorder)
    said = "Please call me back on six four six five five five zero one four three or jd@example.com"
    await call.say(said, Step(text="I'll note 646-555-0143.", calls=[("end_call", {})]))
    await call.hang_up(recorder)

    assert said in [m.text_content for m in call.script.seen[0].messages()]
    report = await stored(pool, call.desk.session_id)
    assert [(m.role, m.content, m.metadata) for m in report.messages] == [
        ("user", "Please call me back on [PHONE] or [EMAIL]", {"redacted": ["EMAIL", "PHONE"]}),
        ("assistant", "I'll note [PHONE].", {"redacted": ["PHONE"]})]
    assert "555" not in report.call.transcript and "[PHONE]" in report.call.transcript


@pytest.mark.db
async def test_without_redact_pii_the_text_is_stored_as_said(pool, recorder, tenant):
    call = await open_text_call(pool, recorder)
    await call.say("my number is 646 555 0143", Step(text="Thanks."))
    await call.hang_up(recorder)
    report = await stored(pool, call.desk.session_id)
    assert report.messages[0].content == "my number is 646 555 0143"
