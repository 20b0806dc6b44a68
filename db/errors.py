"""Our errors, and the one place driver errors become them.

Repositories raise DatabaseError and its kinds, never asyncpg's, with messages a person can act
on; callers turn them into a spoken ToolError or an HTTP status. Each repository module registers
the constraints of its own tables with `constraints({...})`, naming the error and the message a
violation becomes, and marks each public function with `@repository`, which translates whatever
the driver raises inside it. Pure rules (a phone number's format, a booking's time window) raise
DomainError: nothing went wrong with the database, a value was refused before it was asked.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Coroutine, Iterator, Mapping
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base


class DatabaseError(Exception):
    """Base of every error our repositories raise."""


class NotFound(DatabaseError):
    pass


class Conflict(DatabaseError):
    pass


class InvalidInput(DatabaseError):
    pass


class Unavailable(DatabaseError):
    """The database could not be reached or went away; the operation may be retried."""


class Slow(Unavailable):
    """The database answered too slowly: a statement or lock timeout cancelled the query (a row
    held by another transaction, an overloaded server). Nothing was written; a retry may pass."""


# query_canceled (statement_timeout), lock_not_available (lock_timeout, NOWAIT). Not 57P: 57014
# is a cancelled statement, not the server going away, so is_transient does not count it.
_SLOW_STATES = ("57014", "55P03")


def is_slow(exc: BaseException) -> bool:
    return isinstance(exc, Slow) or (
        isinstance(exc, asyncpg.PostgresError) and getattr(exc, "sqlstate", None) in _SLOW_STATES)


class DomainError(ValueError):
    """A rule of the domain refused a value without asking the database (a malformed phone
    number, a booking inside the lead time). Its message is meant for the person who gave it."""


Constraint = tuple[type[DatabaseError], str]

# constraint name -> (error class, message), filled by the repository modules as they are imported.
_CONSTRAINTS: dict[str, Constraint] = {}


def constraints(table: Mapping[str, Constraint]) -> Mapping[str, Constraint]:
    """Register what a violation of each of a module's constraints becomes; returns the table.
    A name registered twice must mean the same error, or the second module is wrong."""
    for name, entry in table.items():
        if _CONSTRAINTS.setdefault(name, entry) != entry:
            raise ValueError(f"constraint {name} is already registered with another error")
    return MappingProxyType(dict(table))


def registered_constraints() -> Mapping[str, Constraint]:
    """Every constraint registered so far (by the modules imported so far)."""
    return MappingProxyType(_CONSTRAINTS)


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
    if isinstance(exc, asyncpg_base.DataError):
        return False  # an InterfaceError, but the driver refusing to encode a value, not an outage
    return isinstance(exc, _TRANSIENT)


# A partition's own constraints are its table's with the partition in the name (sql/0016:
# voice_messages_p202612_call_sequence_key, idx_call_events_errors_default).
_PARTITION = re.compile(r"_(?:p\d{6}|default)(?=_|$)")


def table_constraint(constraint: str | None) -> str | None:
    """The registered constraint whose copy in a partition `constraint` is (else itself)."""
    if constraint is None or constraint in _CONSTRAINTS:
        return constraint
    return _PARTITION.sub("", constraint, count=1)


def translate(exc: Exception) -> DatabaseError:
    """The DatabaseError for a driver exception."""
    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, asyncpg_base.DataError):
        return InvalidInput(str(exc))
    if is_slow(exc):
        return Slow(f"the database is slow: {exc}")
    if is_transient(exc):
        return Unavailable(f"the database is unavailable: {exc}")
    constraint = table_constraint(getattr(exc, "constraint_name", None))
    if constraint in _CONSTRAINTS:
        cls, message = _CONSTRAINTS[constraint]
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


# What the driver (or the socket under it) raises.
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run a block, turning driver errors into ours (for code outside a repository function that
    talks to the driver itself, such as a pool's acquire)."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc


P = ParamSpec("P")
T = TypeVar("T")


def repository(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Mark a public repository function: whatever the driver raises in it comes out as ours."""

    @functools.wraps(fn)
    async def translating(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except TimeoutError as exc:  # a query the client gave up on (asyncpg's command_timeout)
            raise Slow("the database did not answer in time") from exc
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    translating.translates_errors = True  # type: ignore[attr-defined]
    return translating


def translates_errors(fn: Callable[..., Any]) -> bool:
    """Whether `fn` is marked with @repository."""
    return getattr(fn, "translates_errors", False) is True
