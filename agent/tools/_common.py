"""What the tools share: turning our errors into something the agent can say, and reading the
dates and times the model passes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import asyncpg
from livekit.agents import ToolError

from agent.speech import spoken_time
from db.desk.slots import SlotTaken
from db.errors import (
    DatabaseError,
    DomainError,
    InvalidInput,
    NotFound,
    Slow,
    Unavailable,
    is_slow,
    is_transient,
)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def speakable_errors() -> Iterator[None]:
    """Domain errors become a ToolError whose message the model can pass on to the caller."""
    try:
        yield
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
        # `pool.acquire()` and a transaction's commit sit outside the repositories' translation:
        # they raise the driver's (or the socket's) error, not Unavailable.
        if is_slow(exc):
            raise _slow(exc) from exc
        if not is_transient(exc):
            raise
        raise _unavailable(exc) from exc
    except Slow as exc:
        raise _slow(exc) from exc
    except Unavailable as exc:
        raise _unavailable(exc) from exc
    except SlotTaken as exc:
        raise ToolError(f"{spoken_time(exc.starts_at, exc.timezone)} is no longer available") from exc
    except (InvalidInput, NotFound, DomainError) as exc:  # DomainError: a rule refused a value
        raise ToolError(str(exc)) from exc
    except DatabaseError as exc:  # other conflicts and the rest: the message is ours
        raise ToolError(str(exc)) from exc


def _slow(exc: Exception) -> ToolError:
    log.warning("database too slow in a tool (statement or lock timeout): %s", type(exc).__name__)
    return ToolError("the booking system is slow right now and nothing was booked; offer to try "
                     "again in a moment, take a message or transfer the caller")


def _unavailable(exc: Exception) -> ToolError:
    log.error("database unavailable in a tool: %s", exc)
    return ToolError("our booking system is not answering right now; offer to take a message "
                     "or transfer the caller")


# Dates the tools read at all: wide enough for any booking rule to speak its own refusal (past,
# beyond the horizon), narrow enough that date arithmetic never overflows (year 9999 + 6 days).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def parse_local_time(value: str, timezone: str) -> datetime:
    """'2026-11-24T10:30' (the location's local time) -> an aware datetime.

    A time the clocks skip on a DST change (02:30 on the US spring-forward Sunday) is refused: the
    caller is asked for another. A time they pass twice (01:30 on the fall-back Sunday) is the
    earlier of the two (fold=0, daylight time), as people mean by default. An offset is accepted
    only when it is the location's at that time (the ISO form check_availability gives); another
    one ('Z', '-08:00' for a New York location) is refused rather than converted, because a
    model that adds a foreign offset has usually mistaken the time, not the zone."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError as exc:
        raise ToolError(f"I could not read the time {value[:40]!r}; use YYYY-MM-DDTHH:MM") from exc
    _check_year(parsed.year)
    zone = ZoneInfo(timezone)
    local = parsed.replace(tzinfo=zone, fold=0)
    if parsed.tzinfo is not None:
        # The later 01:30 of a fall-back night, given with its own offset, is the later one.
        local = next((t for t in (local, local.replace(fold=1))
                      if t.utcoffset() == parsed.utcoffset()), None)
    if local is None:
        raise ToolError(f"give the time in the location's local time ({timezone}) without an "
                        "offset, as YYYY-MM-DDTHH:MM")
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ToolError(f"{local.strftime('%-I:%M %p')} does not exist on {local.strftime('%A %B %-d')}: "
                        "the clocks go forward that night; ask the caller for another time")
    return local


def parse_date(value: str) -> date:
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ToolError(f"I could not read the date {value[:40]!r}; use YYYY-MM-DD") from exc
    _check_year(parsed.year)
    return parsed


def _check_year(year: int) -> None:
    if year > LATEST_YEAR:
        raise ToolError("that date is too far ahead to book; ask the caller for a nearer one")
    if year < EARLIEST_YEAR:
        raise ToolError("that date is in the past; ask the caller for a date to come")
