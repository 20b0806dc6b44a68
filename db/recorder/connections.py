"""The connections of the recorder's own pool: binary jsonb codecs (which binary COPY needs),
timeouts as long as the writer waits, and no reset between batches."""

from __future__ import annotations

import json

import asyncpg

from db.pool import init_connection as pool_init_connection
from db.pool import timeouts


def _jsonb_encode(value: object) -> bytes:
    return b"\x01" + json.dumps(value).encode()  # jsonb's binary format: a version byte, then text


def _jsonb_decode(data: bytes) -> object:
    return json.loads(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """The codecs of the recorder's own pool: db.pool's, but jsonb in binary, which binary COPY
    into voice_messages and call_events needs (the same Python values in and out)."""
    await pool_init_connection(conn)
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")


def write_bounds(write_timeout: float, *, pooled: bool = False) -> dict:
    """The recorder pool's timeouts: the server gives up on a statement, or a wait for a lock,
    when the writer would (a batch past write_timeout counts as Postgres unavailable) rather than
    finishing it for nobody. `pooled`: through a transaction-mode pooler (db.pool.timeouts)."""
    ms = int(write_timeout * 1000)
    return timeouts(ms, ms, write_timeout, pooled=pooled)


async def keep_session(conn: asyncpg.Connection) -> None:
    """The reset of the recorder's own pool: none. Its connections keep no session state but
    the staging tables, which are worth keeping, and the default reset is a round trip a batch."""
