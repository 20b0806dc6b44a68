"""The asyncpg pool every process uses (db.startup finds the DSN it connects to)."""

from __future__ import annotations

import json
import logging

import asyncpg

log = logging.getLogger(__name__)


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
