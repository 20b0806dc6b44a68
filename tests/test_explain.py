"""The seed's four query shapes use an index once the tables are big enough for the planner to
prefer one: 50,000 calls of 500 users (1% active) and 100,000 messages, analyzed. (More messages
change no plan here and cost seconds: 200,000 took 5 s to load on the CI machine.)"""

from __future__ import annotations

import re

import pytest

from db.errors import table_constraint
from db.pool import connect
from tests.conftest import create_clone, drop_database, with_database

pytestmark = pytest.mark.db

CALLS, USERS, TURNS_PER_CALL = 50_000, 500, 2

FILL = f"""
insert into users (id, email)
select md5('user' || u)::uuid, 'user' || u || '@example.com' from generate_series(0, {USERS - 1}) u;

insert into voice_calls (id, session_id, user_id, status, started_at, created_at)
select md5('call' || g)::uuid, 'RM_' || g, md5('user' || (g % {USERS}))::uuid,
       (case when g % 100 = 0 then 'active' else 'completed' end)::call_status,
       now() - g * interval '1 minute', now() - g * interval '1 minute'
  from generate_series(1, {CALLS}) g;

insert into voice_messages (call_id, sequence_number, item_id, role, content, tokens_used,
                            call_created_at)
select c.id, s, 'item_' || s, (case when s % 2 = 0 then 'user' else 'assistant' end)::message_role,
       'turn ' || s, 10, c.created_at
  from voice_calls c, generate_series(0, {TURNS_PER_CALL - 1}) s;

analyze users, voice_calls, voice_messages;
"""

# (query, a parameter, the indexes that may serve it)
SHAPES = {
    "a user's call history": (
        "select * from voice_calls where user_id = $1 order by created_at desc",
        "md5('user7')::uuid", {"idx_voice_calls_user_id"},
    ),
    "lookup by session id": (
        "select * from voice_calls where session_id = $1", "'RM_4242'", {"voice_calls_session_id_key"},
    ),
    "active calls": (
        "select * from voice_calls where status = 'active' order by created_at desc",
        None, {"idx_voice_calls_active"},
    ),
    # 0001 has two indexes on (call_id, sequence_number): the seed's and the unique constraint's.
    "a call's messages in order": (
        "select * from voice_messages where call_id = $1 order by sequence_number",
        "md5('call4242')::uuid",
        {"idx_voice_messages_call_sequence", "voice_messages_call_sequence_key"},
    ),
}

INDEX_NODE = re.compile(
    r"(?:Index Scan|Index Only Scan)(?: Backward)? using (\w+)|Bitmap Index Scan on (\w+)"
)


SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


@pytest.fixture(scope="module")
async def big(admin_dsn, template_dsn):
    """One database for the whole module: filling it is the slow part."""
    name = await create_clone(admin_dsn)
    conn = await connect(with_database(admin_dsn, name))
    try:
        await conn.execute(FILL)
        yield conn
    finally:
        await conn.close()
        await drop_database(admin_dsn, name)


def indexes_used(plan: str) -> set[str]:
    """The indexes of the tables the plan reads (a partition's index counts as its table's)."""
    return {table_constraint(a or b) for a, b in INDEX_NODE.findall(plan)}


async def explain(conn, query: str, value: str | None, *, generic: bool) -> str:
    """The plan of `query` for `value`; with `generic`, the parameterised plan a prepared statement
    switches to after a few runs (asyncpg prepares every statement)."""
    if value is None:
        rows = await conn.fetch(f"explain {query}")
    else:
        mode = "force_generic_plan" if generic else "force_custom_plan"
        async with conn.transaction():
            await conn.execute(f"set local plan_cache_mode = {mode}")
            await conn.execute(f"prepare shape as {query}")
            try:
                rows = await conn.fetch(f"explain execute shape({value})")
            finally:
                await conn.execute("deallocate shape")
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("generic", [False, True], ids=["custom_plan", "generic_plan"])
@pytest.mark.parametrize("shape", SHAPES)
async def test_seed_query_shapes_use_an_index(big, shape, generic):
    query, value, expected = SHAPES[shape]
    plan = await explain(big, query, value, generic=generic)
    assert indexes_used(plan) & expected, plan
    # A partition with no rows yet (the months ahead) is read by a scan of its nothing.
    for table in SEQ_SCAN.findall(plan):
        assert await big.fetchval(f"select not exists (select from {table})"), plan


async def test_the_data_set_is_what_the_plans_assume(big):
    assert await big.fetchval("select count(*) from voice_calls") == CALLS
    assert await big.fetchval("select count(*) from voice_calls where status = 'active'") == CALLS // 100
    assert await big.fetchval("select count(*) from voice_messages") == CALLS * TURNS_PER_CALL
    assert await big.fetchval("select count(distinct user_id) from voice_calls") == USERS
