"""Group commit: deliveries that arrive together share one transaction, each is answered only
once that transaction has committed, and one that Postgres refuses does not fail the others."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from google.protobuf.json_format import MessageToJson

from tests.livekit_webhooks import call_rows, check_realistic_call, post, realistic_call, webhook_client
from webhooks import effects

pytestmark = [
    pytest.mark.db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


async def test_deliveries_arriving_together_share_a_transaction(pool, conn):
    calls = {f"RM_g{n}": realistic_call(f"RM_g{n}") for n in range(4)}
    events = [e for call in calls.values() for e in call.values()]
    async with webhook_client(pool, commit_lanes=1) as client:
        responses = await asyncio.gather(*(post(client, e) for e in events))
    assert [r.status for r in responses] == [200] * len(events)
    # Rows written by one transaction carry its id (xmin): fewer transactions than deliveries.
    transactions = await conn.fetchval("select count(distinct xmin::text) from webhook_events")
    assert await conn.fetchval("select count(*) from webhook_events") == len(events)
    assert transactions < len(events) / 2, transactions
    for room in calls:
        check_realistic_call(await call_rows(conn, room), room)


async def test_a_delivery_is_answered_after_its_commit(pool, conn):
    async with webhook_client(pool) as client:
        for key, event in realistic_call("RM_seen").items():
            response = await post(client, event)
            assert (await response.json())["status"] == "applied"
            # Visible at once from another connection: the answer came after the commit.
            assert await conn.fetchval("select 1 from webhook_events where event_id = $1", event.id), key


async def test_a_group_that_fails_is_stored_one_delivery_at_a_time(pool, conn):
    events = list(realistic_call("RM_split").values())
    # Make the agent's rows fail for good (a check Postgres enforces), so that any group holding
    # one of its events is rolled back.
    await conn.execute("""
        alter table call_participants add constraint test_no_agent_rows
        check (participant_identity <> 'agent-AJ_1')""")
    async with webhook_client(pool, commit_lanes=1) as client:
        responses = await asyncio.gather(*(post(client, e) for e in events))
    statuses = sorted(r.status for r in responses)
    # The agent's join and leave are refused (500, logged); the caller's events are all stored.
    assert statuses == [200] * 5 + [500] * 2
    rows = await call_rows(conn, "RM_split")
    assert {p["participant_sid"] for p in rows["call_participants"]} == {"PA_caller"}
    assert len(rows["webhook_events"]) == 5


async def test_a_whole_call_applied_as_one_group_gives_the_record_of_one_delivery_at_a_time(conn):
    """A group's effects are one statement (sql/0017_webhook_effects.sql): a call's seven events
    in one group, in a seeded sample of orders, end in the rows one transaction each gives."""
    room = "RM_onegroup"
    events = list(realistic_call(room).values())
    expected = await _rows_after(conn, room, [[e] for e in events])
    check_realistic_call(expected, room)
    for order in random.Random(12).sample(list(itertools.permutations(events)), 25):
        assert await _rows_after(conn, room, [list(order)]) == expected, [e.event for e in order]


async def _rows_after(conn, room: str, groups: list[list]) -> dict:
    """The call's rows after recording each group in one record_group, rolled back after."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        for group in groups:
            results = await effects.record_group(conn, [(e, MessageToJson(e)) for e in group])
            assert results == [effects.outcome(e) for e in group]
        return await call_rows(conn, room)
    finally:
        await transaction.rollback()
