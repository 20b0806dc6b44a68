"""Group commit: deliveries that arrive together share one transaction, each is answered only
once that transaction has committed, and one that Postgres refuses does not fail the others."""

from __future__ import annotations

import asyncio

import pytest

from tests.livekit_webhooks import call_rows, check_realistic_call, post, realistic_call, webhook_client

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
