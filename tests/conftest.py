"""Test harness on a real Postgres: DATABASE_URL when set, else an embedded server in a
temporary folder. The schema is migrated once into a template database; every test that asks
for `db_dsn` (or `conn` / `pool`) gets its own clone of it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from db.pool import connect, create_pool
from db.scratch import with_database

TEMPLATE = "frontdesk_template"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres | None]:
    """The embedded server of this test run (None when DATABASE_URL points elsewhere)."""
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", fsync=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin_dsn(pg_server: EmbeddedPostgres | None) -> str:
    return os.environ["DATABASE_URL"] if pg_server is None else pg_server.admin_dsn


@pytest.fixture(scope="session")
async def template_dsn(admin_dsn: str) -> str:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"drop database if exists {TEMPLATE} with (force)")
        await admin.execute(f"create database {TEMPLATE}")
    finally:
        await admin.close()
    dsn = with_database(admin_dsn, TEMPLATE)
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return dsn


async def create_database(admin_dsn: str, *, prefix: str, template: str | None = None,
                          owner: str | None = None) -> str:
    """A new database named `<prefix>_<random>` (a copy of `template`, or empty, owned by `owner`
    or the admin); its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f" template {template} strategy file_copy" if template else ""
    owned = f" owner {owner}" if owner else ""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"create database {name}{copy}{owned}")
    finally:
        await admin.close()
    return name


async def create_clone(admin_dsn: str) -> str:
    return await create_database(admin_dsn, prefix="test", template=TEMPLATE)


async def drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"drop database if exists {name} with (force)")
    finally:
        await admin.close()


@pytest.fixture
async def db_dsn(admin_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = await create_clone(admin_dsn)
    yield with_database(admin_dsn, name)
    await drop_database(admin_dsn, name)


@pytest.fixture
async def empty_dsn(admin_dsn: str) -> AsyncIterator[str]:
    """A database with nothing in it, for tests of the migrations themselves."""
    name = await create_database(admin_dsn, prefix="empty")
    yield with_database(admin_dsn, name)
    await drop_database(admin_dsn, name)


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(db_dsn)
    yield connection
    await connection.close()


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_dsn, min_size=1, max_size=25)
    yield p
    await p.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
async def tenant(pool: asyncpg.Pool):
    """The demo business (Bright Smile Dental), seeded into this test's database."""
    from db.demo.seed import seed_demo

    async with pool.acquire() as connection:
        return await seed_demo(connection)


@pytest.fixture
async def recorder(db_dsn: str, tmp_path: Path, tenant):
    """A started recorder on this test's database (after the demo is seeded), closed after it."""
    from db.recorder import Recorder

    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    rec = Recorder(db_dsn, spool_dir=spool, name="test")
    await rec.start()
    yield rec
    await rec.close()


class RestartableServer:
    """An embedded server that a test may stop and start again (faults): it comes back at the
    address stored with its data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.embedded = EmbeddedPostgres(data_dir, fsync=False)

    @property
    def dsn(self) -> str:
        return self.embedded.admin_dsn

    def start(self) -> None:
        if not self.embedded.owned:
            self.embedded.start()

    def stop(self) -> None:
        self.embedded.stop()


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    server = RestartableServer(tmp_path_factory.mktemp("faults") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fault_dsn(pg: RestartableServer):
    """A fresh, migrated database on the restartable server, which is up again after the test."""
    name = await create_database(pg.dsn, prefix="faults")
    dsn = with_database(pg.dsn, name)
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield dsn
    await asyncio.to_thread(pg.start)
