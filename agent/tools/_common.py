"""What the tools share: turning our errors into something the agent can say, and reading the
dates and times the model passes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg
from livekit.agents import ToolError

from agent.speech import spoken_time
from db.desk.slots import SlotTaken
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
    except SlotTaken as exc:
        raise ToolError(f"{spoken_time(exc.starts_at, exc.timezone)} is no longer available") from exc
    except (InvalidInput, NotFound, DomainError) as exc:  # DomainError: a rule refused a value
        raise ToolError(str(exc)) from exc
    except DatabaseError as exc:  # other conflicts and the rest: the message is ours
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
