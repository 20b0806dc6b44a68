"""The asyncpg pool every process uses, and the DSN it connects to."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import asyncpg

from db.embedded import EmbeddedPostgres

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


def resolve_dsn(database_url: str | None, embedded_dir: Path) -> tuple[str, EmbeddedPostgres | None]:
    """`database_url` when given; else start (or attach to) the embedded server in
    `embedded_dir`. The caller owns the returned server and stops it at shutdown."""
    if database_url:
        return database_url, None
    server = EmbeddedPostgres(embedded_dir).start()
    print(f"Using embedded Postgres, data in {server.data_dir} (set DATABASE_URL to use your own)",
          flush=True)
    return server.dsn, server
