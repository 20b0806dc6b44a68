"""Plain-SQL migrations: `sql/NNNN_description.sql`, applied once each, in order, each in its
own transaction, recorded with a checksum in `schema_migrations`."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same for every migrator.
_LOCK_KEY = 0x46_44_4D_49_47  # "FDMIG"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    version: str
    name: str
    applied_at: datetime | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(version=match.group(1), name=path.name, path=path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number in {sql_dir}")
    return found


CREATE_TABLE = """
create table if not exists schema_migrations (
    version text primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
)
"""

SELECT_APPLIED = "select version, name, checksum, applied_at from schema_migrations"

INSERT_APPLIED = "insert into schema_migrations (version, name, checksum) values ($1, $2, $3)"


async def _applied(conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    exists = await conn.fetchval("select to_regclass('schema_migrations') is not null")
    if not exists:
        return {}
    return {r["version"]: r for r in await conn.fetch(SELECT_APPLIED)}


def _check_unchanged(migration: Migration, record: asyncpg.Record) -> None:
    if record["checksum"] != migration.checksum:
        raise MigrationError(
            f"{migration.name} was changed after it was applied (checksum differs). "
            "Landed migrations are never edited: restore the file and put the change in a new one."
        )


async def migrate(conn: asyncpg.Connection, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply every pending migration; return the names applied (empty when up to date).

    A session advisory lock serialises concurrent migrators: the second waits, then finds
    nothing left to do."""
    migrations = discover(sql_dir)
    await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(CREATE_TABLE)
        applied = await _applied(conn)
        done = []
        for migration in migrations:
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
                continue
            log.info("applying %s", migration.name)
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    INSERT_APPLIED, migration.version, migration.name, migration.checksum
                )
            done.append(migration.name)
        return done
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate_dsn(dsn: str, sql_dir: Path = SQL_DIR, **connect_options) -> list[str]:
    """migrate() on a connection of its own: what a process runs at start (`connect_options`:
    db.pool.migration_options, its timeouts)."""
    from db.pool import connect

    conn = await connect(dsn, **connect_options)
    try:
        return await migrate(conn, sql_dir)
    except (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError, TimeoutError) as exc:
        raise MigrationError(
            f"gave up after MIGRATION_TIMEOUT_MS ({exc.__class__.__name__}): another migrator, or a "
            "long transaction holding a lock the migration needs"
        ) from exc
    finally:
        await conn.close()


async def status(conn: asyncpg.Connection, sql_dir: Path = SQL_DIR) -> list[MigrationStatus]:
    """Every migration file, applied or pending; raises if an applied file was edited."""
    applied = await _applied(conn)
    result = []
    for migration in discover(sql_dir):
        record = applied.get(migration.version)
        if record is not None:
            _check_unchanged(migration, record)
        result.append(
            MigrationStatus(
                version=migration.version,
                name=migration.name,
                applied_at=record["applied_at"] if record else None,
            )
        )
    return result


async def pending(conn: asyncpg.Connection, sql_dir: Path = SQL_DIR) -> list[str]:
    return [s.name for s in await status(conn, sql_dir) if not s.applied]
