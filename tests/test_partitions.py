"""Monthly partitions of voice_messages, call_events and webhook_events (sql/0016): the migration
keeps every row, writes stay idempotent by the partition key, a month is created ahead or out of
the default partition, and retention drops a month that is past every period."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from db import ids
from db.calls import calls, events, messages, webhook_events
from db.calls.calls import CallNotFound
from db.calls.events import Event
from db.calls.messages import Message
from db.errors import Conflict
from db.migrate import migrate
from db.pool import connect
from db.privacy import partitions
from db.privacy.policy import DEFAULTS
from db.privacy.retention import run_retention
from db.recorder import batches

pytestmark = pytest.mark.db

PARTITIONED = "0016_monthly_partitions.sql"
NOW = datetime.now(UTC)


def month_start(at: datetime) -> date:
    return at.date().replace(day=1)


def months_back(n: int) -> datetime:
    """Noon on the 10th, `n` months before this one (UTC)."""
    index = NOW.year * 12 + NOW.month - 1 - n
    return datetime(index // 12, index % 12 + 1, 10, 12, tzinfo=UTC)


async def partition_of(conn, table: str, where: str, *args) -> list[str]:
    return [r[0] for r in await conn.fetch(
        f"select tableoid::regclass::text from {table} where {where}", *args)]


# The migration ------------------------------------------------------------------------------------

SNAPSHOT = {
    "voice_messages": "select id, call_id, sequence_number, item_id, role, content, tokens_used, "
                      "metadata, created_at from voice_messages order by id",
    "call_events": "select id, call_id, sequence, event_type, payload, occurred_at, created_at "
                   "from call_events order by sequence",
    "webhook_events": "select event_id, event, room_sid, payload, created_at, received_at, outcome "
                      "from webhook_events order by event_id",
    "voice_calls": "select id, total_tokens_used, updated_at from voice_calls order by id",
    "outbound_events": "select id from outbound_events order by id",
}


async def snapshot(conn) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in await conn.fetch(sql)] for table, sql in SNAPSHOT.items()}


async def test_the_migration_keeps_every_row_in_its_month(empty_dsn, repo_root: Path, tmp_path: Path):
    folder = tmp_path / "sql"
    folder.mkdir()
    for path in sorted((repo_root / "sql").glob("*.sql")):
        if path.name < PARTITIONED:
            shutil.copy(path, folder)
    conn = await connect(empty_dsn)
    try:
        await migrate(conn, sql_dir=folder)
        org = await conn.fetchval("insert into organizations (name, slug) values ('Clinic', 'clinic') "
                                  "returning id")
        await conn.execute("insert into outbound_endpoints (organization_id, url, secret) "
                           "values ($1, 'https://example.com/hook', $2)", org, "whsec_" + "A" * 32)
        old, recent = months_back(14), months_back(0)
        for n, created in enumerate((old, recent)):
            session = f"RM_{n}"
            call = await conn.fetchval(
                "insert into voice_calls (session_id, organization_id, started_at, created_at) "
                "values ($1, $2, $3, $3) returning id", session, org, created)
            await conn.execute(  # as 0015's writers did, without the partition key
                "insert into voice_messages (call_id, sequence_number, item_id, role, content, "
                "tokens_used) select $1, i, 'it' || i, 'user', 'turn ' || i, 3 "
                "from generate_series(0, 2) i", call)
            await conn.executemany(
                "insert into call_events (id, call_id, event_type, payload) values ($1, $2, $3, $4)",
                [(ids.event_id(call, f"e{i}"), call, kind,
                  {"ok": "true", "to": "+12125550100"} if kind == "transfer" else {})
                 for i, kind in enumerate(("tool_call", "transfer", "error"))])
            await conn.execute("insert into webhook_events (event_id, event, room_sid, payload, "
                               "created_at) values ($1, 'room_started', $2, '{}', $3)",
                               f"EV_{n}", session, created)
        await conn.execute("insert into webhook_events (event_id, event, payload) "
                           "values ('EV_untimed', 'room_started', '{}')")
        before = await snapshot(conn)
        assert len(before["voice_messages"]) == 6 and before["outbound_events"]

        shutil.copy(repo_root / "sql" / PARTITIONED, folder)
        assert await migrate(conn, sql_dir=folder) == [PARTITIONED]

        assert await snapshot(conn) == before  # no row lost or changed, no transfer announced again
        old_month = old.strftime("%Y%m")
        of_call = "call_id = (select id from voice_calls where session_id = $1)"
        assert set(await partition_of(conn, "voice_messages", of_call, "RM_0")) == {
            f"voice_messages_p{old_month}"}
        assert set(await partition_of(conn, "call_events", of_call, "RM_0")) == {
            f"call_events_p{old_month}"}
        assert await partition_of(conn, "webhook_events", "event_id = 'EV_untimed'") == [
            "webhook_events_default"]
        # The months ahead exist; a new event continues the sequence; the views read the new tables.
        ahead = (month_start(NOW) + timedelta(days=95)).strftime("%Y%m")
        assert await conn.fetchval("select to_regclass($1)", f"voice_messages_p{ahead}") is not None
        await events.append_events(conn, events=[
            Event(id=uuid.uuid4(), event_type="error",
                  call_id=await conn.fetchval("select id from voice_calls where session_id = 'RM_1'"))])
        assert await conn.fetchval("select max(sequence) from call_events") == 7
        assert await conn.fetchval("select message_count from call_analytics where session_id = 'RM_0'") == 3
    finally:
        await conn.close()


# Writes ----------------------------------------------------------------------------------------------

async def test_a_replayed_turn_is_recognised_after_its_call_started_earlier(conn, pool):
    call = await calls.start_call(conn, session_id="RM_replay", started_at=NOW)
    turn = Message(call_id=call.id, sequence_number=0, item_id="it0", role="user", content="hi")
    event = Event(id=ids.event_id(call.id, "e"), call_id=call.id, event_type="error")
    await messages.append_messages(conn, messages=[turn])
    await events.append_events(conn, events=[event])
    # LiveKit's room_started arrives late with an earlier start: started_at moves, the key does not.
    await calls.start_call(conn, session_id="RM_replay", started_at=NOW - timedelta(days=40))
    await messages.append_messages(conn, messages=[turn])
    await events.append_events(conn, events=[event])
    async with pool.acquire() as raw:
        async with raw.transaction():
            await batches.merge_messages(raw, [turn])
            await batches.merge_events(raw, [event])
    assert await conn.fetchval("select count(*) from voice_messages") == 1
    assert await conn.fetchval("select count(*) from call_events") == 1
    with pytest.raises(Conflict, match="voice_messages_call_sequence_key"):
        await messages.append_messages(conn, messages=[
            Message(call_id=call.id, sequence_number=0, item_id="other", role="user")])
    with pytest.raises(CallNotFound, match="call_events_call_id_fkey"):
        await events.append_events(conn, events=[
            Event(id=uuid.uuid4(), call_id=ids.call_id("RM_none"), event_type="error")])


async def test_a_webhook_without_its_time_is_still_stored_once(conn):
    for expected in ({"EV_x"}, set()):
        assert await webhook_events.record_webhook_events(conn, events=[
            webhook_events.NewWebhookEvent(event_id="EV_x", event="room_started", body="{}",
                                           created_at=None, outcome="ignored")]) == expected
    assert await partition_of(conn, "webhook_events", "true") == ["webhook_events_default"]


async def test_a_month_without_its_partition_goes_to_the_default_and_moves_into_its_month(conn):
    long_ago = datetime(2001, 3, 5, tzinfo=UTC)
    call = await conn.fetchval("insert into voice_calls (session_id, created_at) values ('RM_old', $1) "
                               "returning id", long_ago)
    await messages.append_messages(conn, messages=[
        Message(call_id=call, sequence_number=i, item_id=f"it{i}", role="user") for i in range(2)])
    await events.append_events(conn, events=[Event(id=uuid.uuid4(), call_id=call, event_type="error")])
    sequence = await conn.fetchval("select sequence from call_events")
    assert await partition_of(conn, "voice_messages", "true") == ["voice_messages_default"] * 2
    assert await conn.fetchval("select create_month_partition('voice_messages', $1)", long_ago.date())
    assert await partition_of(conn, "voice_messages", "true") == ["voice_messages_p200103"] * 2
    assert await conn.fetchval("select create_month_partition('call_events', $1)", long_ago.date())
    assert await conn.fetchval("select sequence from call_events_p200103") == sequence
    assert not await conn.fetchval("select create_month_partition('voice_messages', $1)", long_ago.date())
    # Its indexes and foreign key carry its name; a second message is still idempotent there.
    await messages.append_messages(conn, messages=[
        Message(call_id=call, sequence_number=0, item_id="it0", role="user")])
    assert await conn.fetchval("select count(*) from voice_messages") == 2
    assert await conn.fetchval(
        "select count(*) from pg_constraint where conrelid = 'voice_messages_p200103'::regclass "
        "and conname in ('voice_messages_p200103_call_item_key', 'voice_messages_p200103_call_id_fkey')"
    ) == 2


# Retention -------------------------------------------------------------------------------------------

async def month_of_calls(conn, at: datetime, organization_id=None, *, turns_at: datetime | None = None):
    """A call created at `at` with two turns (stored at `turns_at`, default `at`) and an event."""
    for table in ("voice_messages", "call_events", "webhook_events"):
        await conn.execute("select create_month_partition($1, $2)", table, at.date())
    session = f"RM_{uuid.uuid4().hex[:10]}"
    call = await conn.fetchval(
        "insert into voice_calls (session_id, organization_id, status, started_at, ended_at, created_at) "
        "values ($1, $2, 'completed', $3, $3, $3) returning id", session, organization_id, at)
    await conn.execute(
        "insert into voice_messages (call_id, sequence_number, item_id, role, content, created_at, "
        "call_created_at) select $1, s, 'it' || s, 'user', 'hello', $2, $3 from generate_series(0, 1) s",
        call, turns_at or at, at)
    await conn.execute(
        "insert into call_events (id, call_id, event_type, created_at, call_created_at) "
        "values (gen_random_uuid(), $1, 'error', $2, $3)", call, turns_at or at, at)
    await conn.execute("insert into webhook_events (event_id, event, room_sid, payload, created_at, "
                       "received_at) values ($1, 'room_started', $2, '{}', $3, $3)",
                       f"EV_{session}", session, at)
    return call


async def tables(conn) -> set[str]:
    return {r[0] for r in await conn.fetch(
        "select relname from pg_class where relname ~ '^(voice_messages|call_events|webhook_events)_p'")}


async def test_retention_drops_a_month_past_every_period_and_deletes_the_rest_by_rows(conn, tenant):
    await conn.execute("update organizations set retention = '{\"calls\": 3650}'")
    past = months_back(27)  # past the 730 days of messages and the calls' 3650 days ahead of it
    kept_by_one_row = months_back(28)
    await month_of_calls(conn, past, tenant.organization_id)
    straggler = await month_of_calls(conn, kept_by_one_row, tenant.organization_id,
                                     turns_at=NOW - timedelta(days=10))
    name, straggling = past.strftime("%Y%m"), kept_by_one_row.strftime("%Y%m")

    dry = await run_retention(conn, now=NOW, dry_run=True)
    assert dry.rows["messages"] == 2 and f"voice_messages_p{name}" in await tables(conn)

    report = await run_retention(conn, now=NOW)

    left = await tables(conn)
    assert {f"voice_messages_p{name}", f"call_events_p{name}", f"webhook_events_p{name}"} & left == set()
    # The month holding a recent turn stays; its old webhook went by rows.
    assert {f"voice_messages_p{straggling}", f"call_events_p{straggling}"} <= left
    assert await conn.fetchval("select count(*) from voice_messages where call_id = $1", straggler) == 2
    assert report.rows["messages"] == 2 and report.rows["event_payloads"] == 1
    assert report.rows["webhook_payloads"] == 2
    ahead = (month_start(NOW) + timedelta(days=95)).strftime("%Y%m")
    assert f"voice_messages_p{ahead}" in left
    assert (await run_retention(conn, now=NOW)).rows["messages"] == 0


async def test_an_organisation_that_keeps_longer_keeps_the_month(conn, tenant):
    await conn.execute("update organizations set retention = '{\"messages\": 3650, \"calls\": 3650}'")
    past = months_back(27)
    await month_of_calls(conn, past, tenant.organization_id)
    assert await partitions.past_months(conn, kind="messages", now=NOW,
                                        default_days=DEFAULTS["messages"]) == []
    await run_retention(conn, now=NOW)
    assert f"voice_messages_p{past.strftime('%Y%m')}" in await tables(conn)
    assert await conn.fetchval("select count(*) from voice_messages") == 2


@pytest.mark.skipif("faketime" in os.environ.get("LD_PRELOAD", ""),
                    reason="libfaketime stops the server's timers, lock_timeout's among them")
async def test_a_month_the_writers_keep_busy_is_left_to_the_next_run(conn, pool, tenant):
    past = months_back(27)
    await month_of_calls(conn, past, tenant.organization_id)
    kwargs = {"kind": "messages", "now": NOW, "default_days": DEFAULTS["messages"]}
    async with pool.acquire() as reader:
        async with reader.transaction():
            await reader.execute("select count(*) from voice_messages")  # holds its lock till commit
            assert await partitions.drop_past_months(conn, **kwargs) == 0
    assert f"voice_messages_p{past.strftime('%Y%m')}" in await tables(conn)
    assert await partitions.drop_past_months(conn, **kwargs) == 2
