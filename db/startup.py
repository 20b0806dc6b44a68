"""How a process finds its database: DATABASE_URL when set, else the embedded server, migrated
on the way in and, when this process started the server, stopped on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from db.embedded import EmbeddedPostgres
from db.migrate import migrate_dsn
from db.pool import migration_options
from db.settings import DatabaseSettings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def database(database_url: str | None, embedded_dir: Path, *, migrate: bool = True,
             listen_tcp: bool | None = None) -> Iterator[str]:
    """The DSN to connect to, with every migration applied (unless `migrate` is False).

    Without `database_url`, starts (or attaches to) the embedded server in `embedded_dir` and
    stops it when the block ends. Call it from a synchronous entrypoint, outside any event loop:
    it runs the migrations in a loop of its own. Raises db.migrate.MigrationError.
    `listen_tcp` (the embedded server also on 127.0.0.1) defaults to EMBEDDED_PG_LISTEN_TCP."""
    server = None
    settings = DatabaseSettings()
    if listen_tcp is None:
        listen_tcp = settings.embedded_pg_listen_tcp
    if database_url:
        dsn = database_url
    else:
        server = EmbeddedPostgres(embedded_dir, listen_tcp=listen_tcp).start()
        print(f"Using embedded Postgres, data in {server.data_dir} (set DATABASE_URL to use your own)",
              flush=True)
        dsn = server.dsn
    try:
        if migrate:
            direct = settings.session_url(dsn) if database_url else dsn
            for name in asyncio.run(migrate_dsn(direct, **migration_options(settings))):
                log.info("applied migration %s", name)
        yield dsn
    finally:
        if server is not None:
            server.stop()
