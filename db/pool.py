"""The asyncpg pool every process uses (db.startup finds the DSN it connects to), and the bounds
every connection has (db.settings.DatabaseSettings)."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


def timeouts(statement_ms: int, lock_ms: int, connect_s: float, *,
             pooled: bool = False) -> dict[str, Any]:
    """create_pool / connect keyword arguments that bound every query of the connection.

    The server's statement and lock timeouts are the rule; the client's command_timeout, at the
    statement timeout, is the backstop for when they do not reach or do not fire: a pooler that
    drops startup parameters, or a server whose timers are off (libfaketime stops them).

    `pooled`: the DSN is a transaction-mode pooler, which gives each transaction to any server
    connection. asyncpg's statement cache (named prepared statements, missing on the next server
    connection) is off, and the timeouts are not sent as startup parameters, which PgBouncer
    refuses: the server's bounds then come from the role's own settings (README)."""
    options: dict[str, Any] = {"timeout": connect_s, "command_timeout": statement_ms / 1000}
    if pooled:
        options["statement_cache_size"] = 0
    else:
        options["server_settings"] = {"statement_timeout": str(statement_ms),
                                      "lock_timeout": str(lock_ms)}
    return options


def connection_options(settings) -> dict[str, Any]:
    """The bounds of a service's connections, from its DatabaseSettings."""
    return timeouts(settings.statement_timeout_ms, settings.lock_timeout_ms,
                    settings.connect_timeout_seconds, pooled=settings.pooled)


def migration_options(settings) -> dict[str, Any]:
    """The bounds of a migrating connection (on settings.session_url): long, but bounds."""
    return timeouts(settings.migration_timeout_ms, settings.migration_timeout_ms,
                    settings.connect_timeout_seconds)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs for every connection: json/jsonb in and out as Python objects."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=init_connection, **kwargs
    )


async def connect(dsn: str, **kwargs) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, **kwargs)
    await init_connection(conn)
    return conn
