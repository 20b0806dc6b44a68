"""The migration runner (db/migrate.py) and `python -m db migrate | status`.

The runner is tested in isolation on a temporary sql folder holding a copy of 0001 (and small
files of our own); one test applies the real sql/ folder to an empty database."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from db import migrate as migrations
from db.migrate import MigrationError, migrate
from db.pool import connect

pytestmark = pytest.mark.db

FIRST = "0001_call_schema.sql"


@pytest.fixture
def sql_dir(repo_root: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "sql"
    folder.mkdir()
    shutil.copy(repo_root / "sql" / FIRST, folder)
    return folder


@pytest.fixture
async def empty_conn(empty_dsn):
    conn = await connect(empty_dsn)
    yield conn
    await conn.close()


async def recorded(conn) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in await conn.fetch(
        "select version, name, checksum from schema_migrations order by version")]


async def test_migrate_applies_pending_files_in_order_and_records_their_checksums(empty_conn, sql_dir):
    (sql_dir / "0002_probe.sql").write_text("-- probe\ncreate table probe (id int);\n")
    assert await migrate(empty_conn, sql_dir=sql_dir) == [FIRST, "0002_probe.sql"]
    assert await recorded(empty_conn) == [
        ("0001", FIRST, hashlib.sha256((sql_dir / FIRST).read_bytes()).hexdigest()),
        ("0002", "0002_probe.sql", hashlib.sha256((sql_dir / "0002_probe.sql").read_bytes()).hexdigest()),
    ]


async def test_second_migrate_is_a_no_op(empty_conn, sql_dir):
    await migrate(empty_conn, sql_dir=sql_dir)
    applied_at = await empty_conn.fetchval("select applied_at from schema_migrations")
    assert await migrate(empty_conn, sql_dir=sql_dir) == []
    assert await empty_conn.fetchval("select applied_at from schema_migrations") == applied_at
    assert await migrations.pending(empty_conn, sql_dir=sql_dir) == []


async def test_a_new_file_is_applied_after_the_landed_ones(empty_conn, sql_dir):
    await migrate(empty_conn, sql_dir=sql_dir)
    (sql_dir / "0002_probe.sql").write_text("create table probe (id int);\n")
    assert await migrations.pending(empty_conn, sql_dir=sql_dir) == ["0002_probe.sql"]
    assert await migrate(empty_conn, sql_dir=sql_dir) == ["0002_probe.sql"]


async def test_every_real_migration_applies_to_an_empty_database_once(empty_conn, repo_root):
    names = sorted(p.name for p in (repo_root / "sql").glob("*.sql"))
    assert await migrate(empty_conn) == names
    assert await migrate(empty_conn) == []


async def test_concurrent_migrators_apply_each_file_once(empty_dsn, sql_dir):
    # 0001 cannot run twice (create type fails), so a double application would raise here.
    (sql_dir / "0002_probe.sql").write_text("create table probe (id int);\n")
    first, second = await connect(empty_dsn), await connect(empty_dsn)
    try:
        results = await asyncio.gather(
            migrate(first, sql_dir=sql_dir), migrate(second, sql_dir=sql_dir)
        )
        assert sorted(results) == [[], [FIRST, "0002_probe.sql"]]
        assert [r[1] for r in await recorded(first)] == [FIRST, "0002_probe.sql"]
        # Both released the lock: a third migrator does not wait.
        assert await asyncio.wait_for(migrate(first, sql_dir=sql_dir), 5) == []
    finally:
        await first.close()
        await second.close()


async def test_an_edited_migration_is_refused_by_name(empty_conn, sql_dir):
    await migrate(empty_conn, sql_dir=sql_dir)
    with (sql_dir / FIRST).open("a") as f:
        f.write("\n-- an edit after landing\n")
    (sql_dir / "0002_probe.sql").write_text("create table probe (id int);\n")
    with pytest.raises(MigrationError, match=FIRST):
        await migrate(empty_conn, sql_dir=sql_dir)
    with pytest.raises(MigrationError, match=FIRST):
        await migrations.status(empty_conn, sql_dir=sql_dir)
    # Nothing after the edited file ran.
    assert await empty_conn.fetchval("select to_regclass('probe')") is None
    assert [r[1] for r in await recorded(empty_conn)] == [FIRST]


async def test_a_failing_migration_leaves_no_trace_and_releases_the_lock(empty_conn, sql_dir):
    await migrate(empty_conn, sql_dir=sql_dir)
    broken = sql_dir / "0002_broken.sql"
    broken.write_text("create table probe (id int);\nselect * from no_such_table;\n")
    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(empty_conn, sql_dir=sql_dir)
    assert await empty_conn.fetchval("select to_regclass('probe')") is None
    assert [r[1] for r in await recorded(empty_conn)] == [FIRST]
    broken.write_text("create table probe (id int);\n")
    assert await asyncio.wait_for(migrate(empty_conn, sql_dir=sql_dir), 5) == ["0002_broken.sql"]


@pytest.mark.parametrize("name", ["1_short.sql", "0002-dash.sql", "0002_Upper.sql"])
async def test_a_badly_named_file_is_refused(empty_conn, sql_dir, name):
    (sql_dir / name).write_text("select 1;\n")
    with pytest.raises(MigrationError, match=name):
        await migrate(empty_conn, sql_dir=sql_dir)
    assert await empty_conn.fetchval("select to_regclass('voice_calls')") is None


async def test_two_files_with_one_version_are_refused(empty_conn, sql_dir):
    (sql_dir / "0001_again.sql").write_text("select 1;\n")
    with pytest.raises(MigrationError, match="share a version"):
        await migrate(empty_conn, sql_dir=sql_dir)


def run_db_command(repo_root: Path, dsn: str, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.run(
        [sys.executable, "-m", "db", command], cwd=repo_root, env=env,
        capture_output=True, text=True, timeout=60,
    )


async def test_cli_migrate_twice_then_status(empty_dsn, repo_root):
    names = sorted(p.name for p in (repo_root / "sql").glob("*.sql"))
    before = await asyncio.to_thread(run_db_command, repo_root, empty_dsn, "status")
    assert before.returncode == 0, before.stderr
    assert f"0 applied, {len(names)} pending" in before.stdout
    assert all(f"{name}" in before.stdout for name in names)

    first = await asyncio.to_thread(run_db_command, repo_root, empty_dsn, "migrate")
    assert first.returncode == 0, first.stderr
    assert [line for line in first.stdout.splitlines() if line.startswith("applied")] == [
        f"applied {name}" for name in names
    ]
    second = await asyncio.to_thread(run_db_command, repo_root, empty_dsn, "migrate")
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout

    after = await asyncio.to_thread(run_db_command, repo_root, empty_dsn, "status")
    assert after.returncode == 0, after.stderr
    assert f"{len(names)} applied, 0 pending" in after.stdout
    assert "pending" not in after.stdout.replace("0 pending", "")


async def test_issue_11_migrations_fix_rows_that_break_their_constraints(empty_conn, repo_root, tmp_path):
    """A call pointing at another organisation's location loses that location (its organisation
    stays); a configuration's slot step under 5 becomes 5. Found by name: numbers may change."""
    real = sorted((repo_root / "sql").glob("*.sql"))
    split = min(i for i, p in enumerate(real)
                if p.name.endswith(("_call_tenancy.sql", "_slot_step_policy.sql")))
    folder = tmp_path / "sql"
    folder.mkdir()
    for path in real[:split]:
        shutil.copy(path, folder)
    await migrate(empty_conn, sql_dir=folder)
    a, b = [await empty_conn.fetchval(
        "insert into organizations (name, slug) values ($1, $1) returning id", slug) for slug in ("a", "b")]
    location_b = await empty_conn.fetchval(
        """insert into locations (organization_id, slug, name, timezone, address_line1, city, region,
           postal_code) values ($1, 'main', 'Main', 'America/New_York', '1 Main St', 'Albany', 'NY',
           '12207') returning id""", b)
    call = await empty_conn.fetchval("""insert into voice_calls (session_id, organization_id, location_id)
                                        values ('RM_mixed', $1, $2) returning id""", a, location_b)
    config = await empty_conn.fetchval(
        """insert into agent_configs (organization_id, version, instructions, greeting, policies)
           values ($1, 1, 'x', 'y', '{"slot_step_minutes": 0, "other": 1}') returning id""", a)
    for path in real[split:]:
        shutil.copy(path, folder)
    assert await migrate(empty_conn, sql_dir=folder) == [p.name for p in real[split:]]
    row = await empty_conn.fetchrow(
        "select organization_id, location_id from voice_calls where id = $1", call)
    assert tuple(row) == (a, None)
    policies = await empty_conn.fetchval("select policies from agent_configs where id = $1", config)
    assert policies == {"slot_step_minutes": 5, "other": 1}
