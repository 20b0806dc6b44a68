"""What 0001_call_schema.sql creates, read back from pg_catalog and compared to exact sets.

0001 is applied alone (a temporary sql folder holding only a copy of it) so that later
migrations, which add their own objects, do not change these sets; a last test checks that the
fully migrated template still has every object of 0001."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from db.errors import registered_constraints
from db.migrate import migrate
from db.pool import connect
from tests.repository_modules import repository_modules

pytestmark = pytest.mark.db

TABLES = {
    "users", "voice_calls", "call_participants", "voice_messages", "call_events", "call_analyses",
    "webhook_events", "schema_migrations",
}
ENUMS = {
    "call_status": ["pending", "active", "completed", "failed", "abandoned"],
    "call_direction": ["inbound", "outbound"],
    "message_role": ["user", "assistant", "system"],
    "participant_type": ["user", "agent", "admin"],
}
TRIGGERS = {
    ("users", "users_updated_at_trigger"),
    ("voice_calls", "voice_calls_updated_at_trigger"),
    ("voice_calls", "voice_calls_calculate_duration_trigger"),
    ("call_participants", "call_participants_updated_at_trigger"),
    ("call_participants", "call_participants_calculate_duration_trigger"),
    ("voice_messages", "voice_messages_update_tokens_trigger"),
    ("voice_messages", "voice_messages_update_tokens_on_update_trigger"),
    ("voice_messages", "voice_messages_update_tokens_on_delete_trigger"),
}
VIEWS = {"active_calls_summary", "call_analytics", "conversation_success_rate", "error_rate_by_type"}
# The named indexes of 0001 (idx_*) and those behind its keys and unique constraints.
INDEXES = {
    ("voice_calls", "idx_voice_calls_user_id"),
    ("voice_calls", "idx_voice_calls_active"),
    ("voice_calls", "idx_voice_calls_ai_agent"),
    ("voice_calls", "idx_voice_calls_started_at"),
    ("voice_calls", "idx_voice_calls_caller_number"),
    ("voice_messages", "idx_voice_messages_call_sequence"),
    ("call_participants", "idx_call_participants_call_id"),
    ("call_participants", "idx_call_participants_user_id"),
    ("call_events", "idx_call_events_call_sequence"),
    ("call_events", "idx_call_events_errors"),
    ("webhook_events", "idx_webhook_events_room_sid"),
    ("users", "users_pkey"),
    ("users", "users_email_key"),
    ("voice_calls", "voice_calls_pkey"),
    ("voice_calls", "voice_calls_session_id_key"),
    ("call_participants", "call_participants_pkey"),
    ("call_participants", "call_participants_call_sid_key"),
    ("voice_messages", "voice_messages_pkey"),
    ("voice_messages", "voice_messages_call_sequence_key"),
    ("voice_messages", "voice_messages_call_item_key"),
    ("call_events", "call_events_pkey"),
    ("call_analyses", "call_analyses_pkey"),
    ("webhook_events", "webhook_events_pkey"),
    ("schema_migrations", "schema_migrations_pkey"),
}
# (table, policy, command, roles)
POLICIES = {
    ("users", "users_select_own", "SELECT", "{authenticated}"),
    ("users", "users_admin_all", "ALL", "{authenticated}"),
    ("voice_calls", "voice_calls_select_own", "SELECT", "{authenticated}"),
    ("voice_calls", "voice_calls_insert_own", "INSERT", "{authenticated}"),
    ("voice_calls", "voice_calls_update_own", "UPDATE", "{authenticated}"),
    ("voice_calls", "voice_calls_admin_all", "ALL", "{authenticated}"),
    ("call_participants", "call_participants_select", "SELECT", "{authenticated}"),
    ("call_participants", "call_participants_admin_all", "ALL", "{authenticated}"),
    ("voice_messages", "voice_messages_select", "SELECT", "{authenticated}"),
    ("voice_messages", "voice_messages_admin_all", "ALL", "{authenticated}"),
    ("call_events", "call_events_select", "SELECT", "{authenticated}"),
    ("call_events", "call_events_admin_all", "ALL", "{authenticated}"),
    ("call_analyses", "call_analyses_select", "SELECT", "{authenticated}"),
    ("call_analyses", "call_analyses_admin_all", "ALL", "{authenticated}"),
    ("webhook_events", "webhook_events_admin_select", "SELECT", "{authenticated}"),
}
FUNCTIONS = {
    ("auth", "jwt"), ("auth", "uid"),
    ("public", "is_admin"), ("public", "can_access_call"), ("public", "set_updated_at"),
    ("public", "voice_calls_calculate_duration"), ("public", "call_participants_calculate_duration"),
    ("public", "voice_messages_update_tokens"),
}

TABLES_Q = """
select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'p')
"""
ENUMS_Q = """
select t.typname, array_agg(e.enumlabel order by e.enumsortorder) as labels
  from pg_type t join pg_enum e on e.enumtypid = t.oid
  join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public' group by t.typname
"""
TRIGGERS_Q = """
select t.tgrelid::regclass::text, t.tgname from pg_trigger t where not t.tgisinternal
"""
VIEWS_Q = """
select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('v', 'm')
"""
INDEXES_Q = """
select tablename, indexname from pg_indexes where schemaname = 'public'
"""
POLICIES_Q = """
select tablename, policyname, cmd, roles::text from pg_policies where schemaname = 'public'
"""
FUNCTIONS_Q = """
select n.nspname, p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname in ('public', 'auth')
"""
RLS_Q = """
select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'p')
"""


def only_0001(repo_root: Path, tmp_path: Path) -> Path:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    shutil.copy(repo_root / "sql" / "0001_call_schema.sql", sql_dir)
    return sql_dir


@pytest.fixture
async def schema_0001(empty_dsn, repo_root, tmp_path):
    conn = await connect(empty_dsn)
    try:
        assert await migrate(conn, sql_dir=only_0001(repo_root, tmp_path)) == ["0001_call_schema.sql"]
        yield conn
    finally:
        await conn.close()


async def catalog(conn) -> dict[str, set]:
    return {
        "tables": {r[0] for r in await conn.fetch(TABLES_Q)},
        "enums": {r[0]: list(r[1]) for r in await conn.fetch(ENUMS_Q)},
        "triggers": {tuple(r) for r in await conn.fetch(TRIGGERS_Q)},
        "views": {r[0] for r in await conn.fetch(VIEWS_Q)},
        "indexes": {tuple(r) for r in await conn.fetch(INDEXES_Q)},
        "policies": {tuple(r) for r in await conn.fetch(POLICIES_Q)},
        "functions": {tuple(r) for r in await conn.fetch(FUNCTIONS_Q)},
    }


async def test_0001_creates_exactly_the_expected_objects(schema_0001):
    found = await catalog(schema_0001)
    assert found["tables"] == TABLES
    assert found["enums"] == ENUMS
    assert found["triggers"] == TRIGGERS
    assert found["views"] == VIEWS
    assert found["indexes"] == INDEXES
    assert found["policies"] == POLICIES
    assert found["functions"] == FUNCTIONS


async def test_0001_enables_row_level_security_on_every_table(schema_0001):
    rls = dict(await schema_0001.fetch(RLS_Q))
    assert rls == dict.fromkeys(TABLES, True)


async def test_0001_comments_every_table_of_its_own(schema_0001):
    missing = await schema_0001.fetch(
        "select relname from pg_class where oid = any($1::regclass[]) "
        "and obj_description(oid, 'pg_class') is null",
        sorted(TABLES - {"schema_migrations"}),
    )
    assert missing == []


async def test_0001_provides_the_supabase_roles_and_auth_functions(schema_0001):
    roles = {r[0] for r in await schema_0001.fetch(
        "select rolname from pg_roles where rolname in ('anon', 'authenticated')")}
    assert roles == {"anon", "authenticated"}
    user = "6a3c2f55-2d47-4a8e-9a55-3f0e1e7d1a01"
    claims = f'{{"sub": "{user}", "app_metadata": {{"role": "admin"}}}}'
    async with schema_0001.transaction():
        await schema_0001.execute("select set_config('request.jwt.claims', $1, true)", claims)
        assert str(await schema_0001.fetchval("select auth.uid()")) == user
        assert await schema_0001.fetchval("select is_admin()") is True
    assert await schema_0001.fetchval("select auth.uid()") is None
    assert await schema_0001.fetchval("select is_admin()") is False


async def test_0001_keeps_auth_functions_a_supabase_database_already_has(empty_dsn, repo_root, tmp_path):
    conn = await connect(empty_dsn)
    try:
        await conn.execute("""
            create schema auth;
            create function auth.uid() returns uuid language sql stable
                as $$ select '00000000-0000-0000-0000-00000000000a'::uuid $$;
        """)
        await migrate(conn, sql_dir=only_0001(repo_root, tmp_path))
        assert str(await conn.fetchval("select auth.uid()")) == "00000000-0000-0000-0000-00000000000a"
        assert await conn.fetchval("select auth.jwt()") == {}
    finally:
        await conn.close()


async def test_full_migration_keeps_every_object_of_0001(conn):
    found = await catalog(conn)
    assert found["tables"] >= TABLES
    assert {k: v for k, v in found["enums"].items() if k in ENUMS} == ENUMS
    assert found["triggers"] >= TRIGGERS
    assert found["views"] >= VIEWS
    # 0016 keys webhook_events by (event_id, created_at), its month partitions' key (created_at
    # may be null: no primary key).
    assert found["indexes"] >= INDEXES - {("webhook_events", "webhook_events_pkey")} | {
        ("webhook_events", "webhook_events_event_key")}
    assert found["policies"] >= POLICIES
    assert found["functions"] >= FUNCTIONS
    rls = dict(await conn.fetch(RLS_Q))
    assert [name for name, enabled in rls.items() if not enabled] == []


async def test_every_constraint_our_errors_name_exists(conn):
    """A renamed constraint would silently turn a precise error into a generic one. A name is one
    the database can report when it is a constraint, a unique index, or raised by a trigger
    function (`raise ... using constraint = '<name>'`)."""
    reportable = {r[0] for r in await conn.fetch(
        "select conname from pg_constraint union select indexname from pg_indexes")}
    functions = await conn.fetchval(
        "select string_agg(p.prosrc, ' ') from pg_proc p "
        "join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'"
    )
    repository_modules()
    named = registered_constraints()
    assert len(named) > 80
    unknown = [name for name in sorted(named) if name not in reportable and name not in functions]
    assert unknown == []
