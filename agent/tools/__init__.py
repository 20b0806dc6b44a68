"""The receptionist's tools, split by domain. Each is thin: a docstring for the model, one call
into a db/ function that holds the rule, known errors turned into a speakable ToolError."""

from agent.tools.appointments import (
    book_appointment,
    cancel_appointment,
    check_availability,
    find_appointment,
    list_services,
    reschedule_appointment,
)
from agent.tools.calls import end_call, transfer_to_human
from agent.tools.knowledge import answer_question, opening_hours

ALL_TOOLS = [
    answer_question, opening_hours, list_services, check_availability, book_appointment,
    find_appointment, reschedule_appointment, cancel_appointment, transfer_to_human, end_call,
]
