"""A throwaway database for a benchmark: created on DATABASE_URL's server, or on an embedded
server of its own in a temporary folder, and dropped (with the server) afterwards."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from db.embedded import EmbeddedPostgres


def with_database(dsn: str, database: str) -> str:
    """`dsn` naming another database on the same server (Unix socket DSNs included)."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


@asynccontextmanager
async def scratch_database(prefix: str, *, fsync: bool = False) -> AsyncIterator[str]:
    """The DSN of a new, empty database named after `prefix` and this process. It is created as
    the server's superuser (the embedded application role may not create databases); `fsync`:
    whether an embedded server flushes to disk (on, for a bench that measures commits)."""
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
        server, admin_dsn = None, os.environ.get("DATABASE_URL")
        if not admin_dsn:
            server = EmbeddedPostgres(Path(tmp) / "pg", fsync=fsync).start()
            admin_dsn = server.admin_dsn
        name = f"{prefix.replace('-', '_')}_{os.getpid()}"
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f"create database {name}")
            try:
                yield with_database(admin_dsn, name)
            finally:
                await admin.execute(f"drop database if exists {name} with (force)")
        finally:
            await admin.close()
            if server is not None:
                server.stop()
