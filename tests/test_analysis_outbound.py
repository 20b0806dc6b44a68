"""What a stored analysis sets off: a `call.analyzed` outbound webhook (written to the outbox in
the transaction that stores the analysis, delivered signed to an endpoint subscribed to it and
verified with the `standardwebhooks` library), nothing when that transaction rolls back, and,
for an organisation with redact_pii on, the analysis and its event stored redacted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from analysis.analyser import analyse_call
from analysis.pipeline import complete
from analysis.rules import RulesAnalyser
from analysis.worker import Worker
from db.analysis import analyses, facts, jobs
from db.analysis.analyses import Analysis
from db.outbound import endpoints
from tests.analysis_helpers import make_call
from tests.outbound_receiver import Receiver
from tests.test_analysis_queue import options
from tests.test_outbound_delivery import delivering

pytestmark = pytest.mark.db

NOW = datetime.now(UTC)
ANALYZED = "select payload from outbound_events where event_type = 'call.analyzed' order by position"


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


async def test_an_endpoint_subscribed_to_call_analyzed_receives_each_version(pool, tenant, receiver):
    async with pool.acquire() as conn:
        ep = await endpoints.add_endpoint(conn, organization_id=tenant.organization_id,
                                          url=receiver.url("analysed"), event_types=["call.analyzed"])
        call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW,
                                  location_id=tenant.midtown_location_id)
    receiver.route("analysed", ep.secret)
    worker = Worker(pool, RulesAnalyser(), options())
    assert await worker.drain() == 1
    async with pool.acquire() as conn:
        current = await analyses.current(conn, call_id=call_id)
        assert await jobs.enqueue(conn, call_ids=[call_id], reason="rerun") == 1
    assert await worker.drain() == 1
    async with delivering(pool):
        await receiver.wait_for(lambda: len(receiver.received) == 2)
    assert receiver.rejected == []
    got = sorted(receiver.of("analysed"), key=lambda d: d.body["sequence"])
    # Signed with the endpoint's secret, only call.analyzed (not call.started/ended), numbered in
    # the order the versions were stored (deliveries run concurrently: they may arrive in any).
    assert [d.verified_with for d in got] == [(0,), (0,)]
    assert [d.body["type"] for d in got] == ["call.analyzed"] * 2
    assert [d.body["data"]["version"] for d in got] == [1, 2]
    first = got[0].body["data"]
    assert first["call_id"] == str(call_id) and first["location_id"] == str(tenant.midtown_location_id)
    assert (first["summary"], first["intent"], first["sentiment"], first["success"], first["quality"],
            first["analyser"], first["prompt_version"]) == (
        current.summary, current.intent, current.sentiment, current.success, current.agent_quality,
        "rules", current.prompt_version)
    assert first["intent"] == "book" and first["success"] is True


async def test_a_rolled_back_completion_enqueues_nothing(conn, tenant):
    call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    [loaded] = await facts.load(conn, call_ids=[call_id])
    made = await analyse_call(RulesAnalyser(), loaded)
    tx = conn.transaction()
    await tx.start()
    assert await complete(conn, [made]) == {call_id: 1}
    assert len(await conn.fetch(ANALYZED)) == 1
    await tx.rollback()
    assert await conn.fetch(ANALYZED) == []
    assert await analyses.current(conn, call_id=call_id) is None
    # Committed, it is there once; a call of no organisation is stored without an event.
    await complete(conn, [made])
    assert [r["payload"]["call_id"] for r in await conn.fetch(ANALYZED)] == [str(call_id)]
    orphan = await conn.fetchval("insert into voice_calls (session_id, status, started_at) "
                                 "values ('RM_orphan', 'completed', now()) returning id")
    nobodys = Analysis(call_id=orphan, status="completed", analyser="rules")
    assert await complete(conn, [nobodys]) == {orphan: 1}
    assert len(await conn.fetch(ANALYZED)) == 1


def personal(call_id: uuid.UUID) -> Analysis:
    """An analysis whose every free-text part quotes the caller's number or e-mail address."""
    return Analysis(
        call_id=call_id, status="completed", analyser="model", intent="book", sentiment="positive",
        success=True, agent_quality=8, summary="Caller (212) 555-0143 booked a cleaning.",
        success_reason="Booked; confirmed to jane@example.com", quality_reasoning="Read back 212-555-0143",
        extraction={"callback": "212 555 0143", "email": "jane@example.com"},
        follow_ups=["Call back on two one two five five five zero one four three"],
        raw_reply='{"summary": "Caller (212) 555-0143 booked"}')


async def test_with_redact_pii_analyses_and_their_events_are_stored_redacted(conn, tenant):
    org = tenant.organization_id
    call_id = await make_call(conn, organization_id=org, started_at=NOW)
    await complete(conn, [personal(call_id)])
    said = await analyses.current(conn, call_id=call_id)
    assert said.summary == "Caller (212) 555-0143 booked a cleaning."

    await conn.execute("update organizations set redact_pii = true where id = $1", org)
    await complete(conn, [personal(call_id)])
    for stored in (await analyses.current(conn, call_id=call_id),
                   (await analyses.history(conn, call_id=call_id))[-1]):
        assert stored.version == 2
        assert stored.summary == "Caller [PHONE] booked a cleaning."
        assert stored.success_reason == "Booked; confirmed to [EMAIL]"
        assert stored.quality_reasoning == "Read back [PHONE]"
        assert stored.extraction == {"callback": "[PHONE]", "email": "[EMAIL]"}
        assert stored.follow_ups == ["Call back on [PHONE]"]
        assert "555" not in stored.raw_reply and "[PHONE]" in stored.raw_reply
        # Categories and scores are not redacted: KPIs read the same.
        assert (stored.intent, stored.sentiment, stored.success, stored.agent_quality) == (
            "book", "positive", True, 8)
    event = (await conn.fetch(ANALYZED))[-1]["payload"]
    assert event["version"] == 2 and event["summary"] == "Caller [PHONE] booked a cleaning."
    # Ids are random and may hold any digits: look for the number in the text fields only.
    text = str({k: v for k, v in event.items() if not k.endswith("id")})
    assert "555" not in text and "jane@" not in text
