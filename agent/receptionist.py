"""The receptionist agent: its instructions, greeting and tools for one call."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from livekit.agents import Agent

from agent.call import FrontDesk
from agent.speech import spoken_clock, spoken_day
from agent.tools import ALL_TOOLS
from db.desk.config_text import fill

PROMPTS = Path(__file__).resolve().parent / "prompts"


def _values(desk: FrontDesk, business: str, now: datetime) -> dict[str, str]:
    local = now.astimezone(desk.location_tz)
    caller = (f"The caller is phoning from {desk.caller.number}." if desk.caller.number
              else "The caller joined online; ask for a phone number when booking.")
    return dict(business=business, location=desk.location.name, timezone=desk.location.timezone,
                today=f"{spoken_day(local)}, {local.year}", now=spoken_clock(local),
                caller_line=caller)


def instructions(desk: FrontDesk, *, business: str, now: datetime | None = None) -> str:
    """The base rules (prompts/instructions.md) followed by the active config's instructions."""
    values = _values(desk, business, now or datetime.now(UTC))
    base = fill((PROMPTS / "instructions.md").read_text(), values)
    if desk.offline:
        base += "\n\n" + (PROMPTS / "offline.md").read_text()
    extra = getattr(desk.config, "instructions", "") or ""
    return base + ("\n\n" + fill(extra, values) if extra else "")


def greeting(desk: FrontDesk, *, business: str) -> str:
    template = getattr(desk.config, "greeting", "") or (PROMPTS / "greeting.txt").read_text()
    # Configuration text is a literal (db.desk.config_text): "Say {0}" is said as written.
    return fill(template.strip(), _values(desk, business, datetime.now(UTC)))


class Receptionist(Agent):
    def __init__(self, desk: FrontDesk, *, business: str) -> None:
        super().__init__(instructions=instructions(desk, business=business), tools=ALL_TOOLS)
