"""The demo's script: what the caller says, and a rule-following stand-in for the model that
answers it with the real tools. Plainly scripted; `python -m agent demo` says so."""

from __future__ import annotations

import re
from datetime import date, timedelta

from livekit.agents import llm

from agent.scripted import Step, first_offered, last_user_text, offered_times, pending_tool_outputs
from agent.speech import spoken_day
from db.demo.seed import demo_holidays


def caller_lines(day: date) -> list[str]:
    return [
        "Hi, do you have parking near the office?",
        f"Great. I'd like to book a dental cleaning on {spoken_day(day)}.",
        "The first time is fine. My name is Jane Doe.",
        "Yes, please book it.",
        "That's all, thank you. Bye!",
    ]


def next_weekday(today: date) -> date:
    """The next Monday-to-Thursday after today that is no public holiday at either demo location
    (both keep their weekly hours then)."""
    closed = demo_holidays(today, today + timedelta(days=60))
    day = today + timedelta(days=1)
    while day.isoweekday() > 4 or day in closed:
        day += timedelta(days=1)
    return day


def _after_tools(outputs: list[llm.FunctionCallOutput]) -> Step:
    last = outputs[-1]
    if last.is_error:
        return Step(text=f"I'm sorry, {last.output}")
    if last.name == "check_availability":
        offered = offered_times(last.output)
        return Step(text=f"The first opening is {offered[0][0]}. May I have your name?" if offered
                    else "I'm sorry, that week is fully booked.")
    if last.name == "answer_question":
        return Step(text=last.output.split(": ", 1)[-1].splitlines()[0])
    return Step(text=last.output)


def receptionist_policy(today: date):
    """The demo model: fixed rules over the caller's last words and the tools' answers."""

    def policy(chat_ctx: llm.ChatContext) -> Step:
        outputs = pending_tool_outputs(chat_ctx)
        if outputs:
            return _after_tools(outputs)
        said = last_user_text(chat_ctx).lower()
        if "bye" in said or "that's all" in said:
            return Step(text="Thank you for calling. Goodbye!", calls=[("end_call", {})])
        if "book" in said and "cleaning" in said and "please" not in said:
            return Step(calls=[("check_availability", {"service": "Dental cleaning",
                                                       "date": next_weekday(today).isoformat()})])
        if match := re.search(r"name is ([a-z ]+)", said):
            free = first_offered(chat_ctx)
            name = match.group(1).strip().title()
            return Step(text=f"To confirm: a dental cleaning on {free[0] if free else 'that day'} "
                             f"for {name}. Shall I book it?")
        if said.startswith("yes"):
            free = first_offered(chat_ctx)
            names = re.findall(r"name is ([a-z ]+)", " ".join(
                (m.text_content or "").lower() for m in chat_ctx.messages() if m.role == "user"))
            if free and names:
                return Step(calls=[("book_appointment", {
                    "service": "Dental cleaning", "start_time": free[1],
                    "customer_name": names[-1].strip().title()})])
        if "?" in said:
            return Step(calls=[("answer_question", {"question": said})])
        return Step(text="How else can I help you today?")

    return policy
