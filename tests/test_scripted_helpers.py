"""What the scripted stand-ins for the model (the demo's and the e2e caller's) read from the
conversation: the tools' answers and the times an availability check offered."""

from __future__ import annotations

from livekit.agents import llm

from agent.scripted import first_offered, offered_times, tool_outputs

AVAILABILITY = ("Free times for a Dental cleaning (local time, pass the ISO form to book):\n"
                "Thursday December 4 at 9:00 AM = 2031-12-04T09:00:00-05:00 with Sam Rivera\n"
                "Thursday December 4 at 9:30 AM = 2031-12-04T09:30:00-05:00")


def _answered(ctx: llm.ChatContext, name: str, output: str, *, is_error: bool = False) -> None:
    call_id = f"call-{len(ctx.items)}"
    ctx.items.append(llm.FunctionCall(call_id=call_id, name=name, arguments="{}"))
    ctx.items.append(llm.FunctionCallOutput(call_id=call_id, name=name, output=output,
                                            is_error=is_error))


def test_offered_times_are_read_from_an_availability_answer():
    assert offered_times(AVAILABILITY) == [
        ("Thursday December 4 at 9:00 AM", "2031-12-04T09:00:00-05:00"),
        ("Thursday December 4 at 9:30 AM", "2031-12-04T09:30:00-05:00")]
    assert offered_times("No free time for a Dental cleaning in the week from 2031-12-04.") == []


def test_the_first_offer_comes_from_the_last_check_that_offered_any():
    ctx = llm.ChatContext()
    assert first_offered(ctx) is None
    _answered(ctx, "check_availability", AVAILABILITY)
    _answered(ctx, "check_availability", "No free time for a Dental cleaning in the week.")
    _answered(ctx, "check_availability", "the service is not offered here", is_error=True)
    assert first_offered(ctx) == ("Thursday December 4 at 9:00 AM", "2031-12-04T09:00:00-05:00")
    assert len(tool_outputs(ctx, "check_availability")) == 2
    assert tool_outputs(ctx, "book_appointment") == []
