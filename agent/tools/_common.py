"""What the tools share: turning our errors into something the agent can say, and times."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg
from livekit.agents import ToolError

from db.errors import DatabaseError, DomainError, InvalidInput, NotFound, Unavailable, is_transient

log = logging.getLogger(__name__)


@contextlib.contextmanager
def speakable_errors() -> Iterator[None]:
    """Domain errors become a ToolError whose message the model can pass on to the caller."""
    try:
        yield
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
        # `pool.acquire()` sits outside the repositories' translation: with Postgres down it
        # raises the driver's (or the socket's) error, not Unavailable.
        if not is_transient(exc):
            raise
        raise _unavailable(exc) from exc
    except Unavailable as exc:
        raise _unavailable(exc) from exc
    except (InvalidInput, NotFound, DomainError) as exc:  # DomainError: a rule refused a value
        raise ToolError(str(exc)) from exc
    except DatabaseError as exc:  # Conflict (e.g. SlotTaken) and the rest: the message is ours
        raise ToolError(str(exc)) from exc


def _unavailable(exc: Exception) -> ToolError:
    log.error("database unavailable in a tool: %s", exc)
    return ToolError("our booking system is not answering right now; offer to take a message "
                     "or transfer the caller")


def parse_local_time(value: str, timezone: str) -> datetime:
    """'2026-11-24T10:30' (the location's local time) -> an aware datetime."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError as exc:
        raise ToolError(f"I could not read the time {value!r}; use YYYY-MM-DDTHH:MM") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ToolError(f"I could not read the date {value!r}; use YYYY-MM-DD") from exc


def spoken_time(moment: datetime, timezone: str) -> str:
    """'Tuesday November 24 at 10:30 AM' in the location's time zone."""
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%A %B %-d at %-I:%M %p")
