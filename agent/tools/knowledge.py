"""Questions about the business: the knowledge base and opening hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from livekit.agents import RunContext, function_tool

from agent.call import FrontDesk
from agent.speech import spoken_clock, spoken_day, spoken_time
from agent.tools._common import speakable_errors
from db.desk import hours, knowledge


@function_tool
async def answer_question(context: RunContext[FrontDesk], question: str) -> str:
    """Look up the business's own answer to a caller's question (parking, prices, insurance,
    policies, directions, services...). Always use this instead of guessing; if it finds nothing,
    say you don't know and offer to transfer the caller.

    Args:
        question: the caller's question in their own words, e.g. "do you have parking"
    """
    desk = context.userdata
    with speakable_errors():
        async with desk.pool.acquire() as conn:
            facts = await knowledge.search(conn, organization_id=desk.organization_id,
                                           location_id=desk.location.id, query=question, limit=2)
    if not facts:
        return "No answer on file for that question."
    desk.achieved("information_provided")
    return "\n".join(f"{fact.title}: {fact.content}" for fact in facts)


@function_tool
async def opening_hours(context: RunContext[FrontDesk]) -> str:
    """Whether the location is open now, until when, when it next opens, and its hours for the
    coming week. Use it for any question about opening hours or whether someone is there."""
    desk = context.userdata
    tz = desk.location.timezone
    now = datetime.now(UTC)
    today = now.astimezone(desk.location.tz).date()
    with speakable_errors():
        async with desk.pool.acquire() as conn:
            status = await hours.opening_status(conn, location_id=desk.location.id, now=now)
            week = await hours.load_schedule(conn, location_id=desk.location.id,
                                             start=today, end=today + timedelta(days=6))
    if status.is_open:
        lines = [f"Open now until {spoken_time(status.open_until, tz)}."]
    else:
        lines = [f"Closed today for {status.holiday}." if status.holiday else "Closed right now."]
    if status.next_opening:
        lines.append(f"Next opening: {spoken_time(status.next_opening, tz)}.")
    lines += week_lines(week, today)
    desk.achieved("information_provided")
    return "\n".join(lines)


def week_lines(schedule: hours.Schedule, first: date) -> list[str]:
    """'Monday December 14: 9:00 AM to 12:30 PM, 1:30 PM to 5:30 PM' for seven days from `first`;
    a day closed for a public holiday says which ('closed: Thanksgiving Day')."""
    lines = []
    for day in (first + timedelta(days=offset) for offset in range(7)):
        spans = [f"{spoken_clock(o)} to {spoken_clock(c)}" for o, c in schedule.local_hours(day)]
        holiday = schedule.holiday(day)
        closed = f"closed: {holiday}" if holiday else "closed"
        lines.append(f"{spoken_day(day)}: {', '.join(spans) if spans else closed}")
    return lines
