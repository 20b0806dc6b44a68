"""Our database errors. Repositories raise these, never asyncpg's, with messages a person can act
on; callers turn them into a spoken ToolError or an HTTP status."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg


class DatabaseError(Exception):
    """Base of every error our repositories raise."""


class NotFound(DatabaseError):
    pass


class CallNotFound(NotFound):
    pass


class Conflict(DatabaseError):
    pass


class DuplicateSession(Conflict):
    pass


class InvalidInput(DatabaseError):
    pass


class Unavailable(DatabaseError):
    """The database could not be reached or went away; the operation may be retried."""


# constraint name -> (error class, message). Domain modules add their own entries.
CONSTRAINTS: dict[str, tuple[type[DatabaseError], str]] = {
    "voice_calls_session_id_key": (DuplicateSession, "a call with this session id already exists"),
    "voice_calls_duration_check": (InvalidInput, "a call's duration cannot be negative"),
    "voice_calls_tokens_check": (InvalidInput, "token counts cannot be negative"),
    "voice_calls_closed_by_check": (InvalidInput, "closed_by must be 'agent' or 'webhook'"),
    "call_participants_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "call_participants_duration_check": (InvalidInput, "a participant's duration cannot be negative"),
    "voice_messages_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "voice_messages_call_sequence_key": (
        Conflict, "another message of this call already has this sequence number"),
    "voice_messages_sequence_check": (InvalidInput, "sequence numbers start at 0"),
    "voice_messages_confidence_check": (
        InvalidInput, "transcript confidence must be between 0 and 1"),
    "voice_messages_latency_check": (InvalidInput, "latency figures cannot be negative"),
    "voice_messages_tokens_check": (InvalidInput, "token counts cannot be negative"),
    "call_events_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "call_events_severity_check": (
        InvalidInput, "severity must be one of debug, info, warning, error, critical"),
    "call_analyses_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
}

_TRANSIENT = (
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later may succeed (the server is away), as opposed to a rejected row."""
    if isinstance(exc, Unavailable):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", "") or ""
        # 08: connection exception, 57P: operator intervention (shutdown), 53: resources
        return sqlstate.startswith(("08", "57P", "53"))
    return isinstance(exc, _TRANSIENT)


def translate(exc: Exception) -> DatabaseError:
    """The DatabaseError for a driver exception."""
    if isinstance(exc, DatabaseError):
        return exc
    if is_transient(exc):
        return Unavailable(f"the database is unavailable: {exc}")
    constraint = getattr(exc, "constraint_name", None)
    if constraint in CONSTRAINTS:
        cls, message = CONSTRAINTS[constraint]
        return cls(f"{message} ({constraint})")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict(f"{exc.detail or exc}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound(f"{exc.detail or exc}")
    if isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)):
        return InvalidInput(str(exc))
    if isinstance(exc, asyncpg.PostgresError):
        return DatabaseError(str(exc))
    raise exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run a block, turning driver errors into ours."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise translate(exc) from exc
