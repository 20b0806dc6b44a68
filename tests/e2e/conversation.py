"""The e2e call's script: what the caller says, the phrases the offline recogniser listens for, and
a rule-following stand-in for the model that answers with the real tools.

The policy only looks for keywords in what was recognised ("parking", "cleaning", "name",
digits, "yes", "bye", "person", "end the call"), so a misheard filler word does not derail the
call. On a goodbye it says goodbye and lets the caller hang up, as most callers do; it ends the
call itself only when asked to."""

from __future__ import annotations

import re
from datetime import date

from livekit.agents import llm

from agent.demo_script import next_weekday
from agent.scripted import (
    Step,
    first_offered,
    last_user_text,
    offered_times,
    pending_tool_outputs,
    tool_outputs,
)

SERVICE = "Dental cleaning"
CALLER_NAME = "Jane Doe"
CALLER_DIGITS = "6465550143"
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# One sentence per turn, no inner full stop: a pause inside a turn could let the VAD split it.
CALLER_LINES = [
    "Hi, do you have parking near the office?",
    "I would like to book a cleaning.",
    "My name is Jane Doe and my number is "
    + " ".join(_DIGIT_WORDS[int(d)] for d in CALLER_DIGITS) + ".",
    "Yes, please book it.",
    "That is all, thank you, goodbye.",
]
QUESTION, BOOKING_REQUEST, DETAILS, CONFIRMATION, GOODBYE = range(len(CALLER_LINES))
# For phone callers: asking for a person (a SIP transfer), asking the agent to hang up.
ASK_FOR_A_PERSON = "A human please."  # espeak-ng's "person" is rarely recognised
ASK_TO_HANG_UP = "Thank you, please end the call now."

# What callers of a dental front desk say: the offline recogniser's language model is built from
# these. More than this script needs, so recognising the script's lines is no foregone conclusion.
CALLER_CORPUS = [
    "hi do you have parking near the office",
    "is there parking",
    "where is the office",
    "what are your opening hours",
    "are you open on saturday",
    "do you take insurance",
    "how much is a cleaning",
    "i would like to book a cleaning",
    "i want to book a checkup",
    "i need to book an appointment",
    "can i book a filling next week",
    "i would like to cancel my appointment",
    "i need to reschedule my appointment",
    "can i move my appointment to tomorrow",
    "the first time is fine",
    "in the morning please",
    "in the afternoon please",
    "my name is jane doe",
    "my name is john smith and my number is five five five zero one two three",
    "my name is maria garcia and my number is three one oh five five five one two three four",
    "my number is six four six eight eight nine seven two seven one",
    "yes please book it",
    "yes please",
    "no thanks",
    "that is all thank you goodbye",
    "thank you bye",
    "can i speak to a person",
    "a human please",
    "sorry could you repeat that",
    "okay great thank you",
    "please end the call now",
    "you can hang up now",
]
# Sounds a recogniser cannot tell from a digit in a spoken number.
_DIGIT_SOUNDS = {**{w: str(i) for i, w in enumerate(_DIGIT_WORDS)}, "oh": "0", "to": "2", "too": "2",
                 "for": "4"}


def caller_details(chat_ctx: llm.ChatContext) -> tuple[str, str] | None:
    """(name, digits) from the last thing the caller said that gave a name."""
    for item in reversed(chat_ctx.items):
        if not (isinstance(item, llm.ChatMessage) and item.role == "user"):
            continue
        said = (item.text_content or "").lower()
        if "name is" not in said:
            continue
        name = []
        for word in said.split("name is", 1)[1].split():
            if word in ("and", "my") or len(name) == 2:
                break
            name.append(word)
        words = re.findall(r"[a-z]+", said.split("number", 1)[-1]) if "number" in said else []
        digits = "".join(_DIGIT_SOUNDS[w] for w in words if w in _DIGIT_SOUNDS)
        return " ".join(name).title(), digits
    return None


def _after_tools(output: llm.FunctionCallOutput) -> Step:
    if output.is_error:
        return Step(text=f"I'm sorry, {output.output}")
    if output.name == "answer_question":
        fact = output.output.splitlines()[0].split(": ", 1)[-1]
        return Step(text=fact.split(". ")[0].rstrip(".") + ".")
    if output.name == "check_availability":
        offered = offered_times(output.output)
        return Step(text=f"The first opening is {offered[0][0]}. May I have your name and phone number?"
                    if offered else "I'm sorry, that week is fully booked.")
    if output.name == "book_appointment":
        return Step(text=f"{output.output} Is there anything else?")
    return Step(text=output.output)


def receptionist_policy(today: date):
    """The stand-in model: keyword rules over the caller's last words and the tools' answers."""

    def policy(chat_ctx: llm.ChatContext) -> Step:
        outputs = pending_tool_outputs(chat_ctx)
        if outputs:
            return _after_tools(outputs[-1])
        said = last_user_text(chat_ctx).lower()
        offered = first_offered(chat_ctx)
        booked = bool(tool_outputs(chat_ctx, "book_appointment"))
        if "end the call" in said or "hang up" in said:
            return Step(text="Goodbye!", calls=[("end_call", {})])
        if "bye" in said or "that is all" in said or "that's all" in said:
            return Step(text="Thank you for calling. Goodbye!")
        if "person" in said or "human" in said:
            return Step(text="Let me transfer you to a member of staff.",
                        calls=[("transfer_to_human", {"reason": "the caller asked for a person"})])
        if "parking" in said:
            return Step(calls=[("answer_question", {"question": "do you have parking"})])
        if said.startswith("yes") and offered and not booked and (details := caller_details(chat_ctx)):
            name, digits = details
            return Step(calls=[("book_appointment", {
                "service": SERVICE, "start_time": offered[1], "customer_name": name,
                "phone_number": digits})])
        if offered and "name" in said and (details := caller_details(chat_ctx)):
            name, digits = details
            return Step(text=f"To confirm: a dental cleaning on {offered[0]} for {name}, "
                             f"phone {' '.join(digits)}. Shall I book it?")
        if "cleaning" in said or "book" in said:
            return Step(calls=[("check_availability", {"service": SERVICE,
                                                       "date": next_weekday(today).isoformat()})])
        return Step(text="Sorry, could you say that again?")

    return policy
