"""The analysis queue: a job per closed call in the closing transaction (agent or webhook
service), workers that share the queue without taking a job twice, retries with backoff, and
failures kept, never lost; analyses kept as the current row plus every version."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from analysis.analyser import analyse_call
from analysis.rules import RulesAnalyser
from analysis.worker import Worker, WorkerOptions
from db.analysis import analyses, facts, jobs
from db.calls import calls
from tests.analysis_helpers import make_call
from tests.livekit_webhooks import post, realistic_call, webhook_client

NOW = datetime.now(UTC)


def options(**overrides) -> WorkerOptions:
    return WorkerOptions(**{"batch_size": 10, "backoff_seconds": 0.0, "poll_seconds": 0.05, **overrides})


async def test_closing_a_call_queues_one_analysis_job_in_the_same_transaction(conn, tenant):
    call = await calls.start_call(conn, session_id="RM_open", started_at=NOW)
    tx = conn.transaction()
    await tx.start()
    await calls.finish_call(conn, session_id="RM_open", status="completed", ended_at=NOW,
                            closed_by="agent")
    assert [j.status for j in await jobs.jobs_of_call(conn, call_id=call.id)] == ["queued"]
    await tx.rollback()
    # The close rolled back, and its job with it.
    assert await jobs.jobs_of_call(conn, call_id=call.id) == []
    await calls.finish_call(conn, session_id="RM_open", status="completed", ended_at=NOW,
                            closed_by="agent")
    # Closing again (the agent reporting its session report later) queues nothing more.
    await calls.finish_call(conn, session_id="RM_open", status="completed", ended_at=NOW,
                            closed_by="agent", session_report={"late": True})
    assert [j.status for j in await jobs.jobs_of_call(conn, call_id=call.id)] == ["queued"]


async def test_the_webhook_service_closing_an_abandoned_call_queues_its_job(pool, tenant):
    events = realistic_call("RM_crashed")
    async with webhook_client(pool) as client:
        for name in ("room_started", "caller_joined", "caller_left", "room_finished"):
            assert (await post(client, events[name])).status == 200
    async with pool.acquire() as conn:
        call = await calls.get_call(conn, session_id="RM_crashed")
        assert call.closed_by == "webhook"
        assert [j.status for j in await jobs.jobs_of_call(conn, call_id=call.id)] == ["queued"]
        # The agent closing it later (it knows more) queues another: a new version will follow.
        await jobs.finish(conn, job_ids=[j.id for j in await jobs.claim(
            conn, limit=10, lease_seconds=60, worker="t")])
        await calls.finish_call(conn, session_id="RM_crashed", status="completed",
                                ended_at=call.ended_at, closed_by="agent")
        assert [j.status for j in await jobs.jobs_of_call(conn, call_id=call.id)] == ["done", "queued"]


async def test_a_worker_stores_the_current_analysis_and_each_version(pool, tenant):
    async with pool.acquire() as conn:
        call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    worker = Worker(pool, RulesAnalyser(), options())
    assert await worker.drain() == 1
    async with pool.acquire() as conn:
        current = await analyses.current(conn, call_id=call_id)
        assert (current.status, current.analyser, current.version) == ("completed", "rules", 1)
        assert (current.intent, current.journey_stage, current.success) == ("book", "booking", True)
        assert current.sentiment == "positive" and 1 <= current.agent_quality <= 10
        assert current.prompt_version == "rules-1" and current.model_used is None
        assert [j.status for j in await jobs.jobs_of_call(conn, call_id=call_id)] == ["done"]
        # A re-analysis makes version 2; version 1 stays in the history.
        assert await jobs.enqueue(conn, call_ids=[call_id], reason="rerun") == 1
    assert await worker.drain() == 1
    async with pool.acquire() as conn:
        assert [v.version for v in await analyses.history(conn, call_id=call_id)] == [1, 2]
        assert (await analyses.current(conn, call_id=call_id)).version == 2


async def test_a_call_in_which_the_caller_never_spoke_is_no_conversation(conn, tenant):
    call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW,
                              turns=[("assistant", "Hello?", None)], outcome=None, status="abandoned")
    [loaded] = await facts.load(conn, call_ids=[call_id])
    result = await analyse_call(RulesAnalyser(), loaded)
    assert result.status == "no_conversation" and result.intent is None


class Broken:
    name, model, prompt_version = "broken", None, None

    async def analyse(self, facts, config):
        raise ConnectionError("model unreachable")

    async def aclose(self):
        pass


async def test_a_failing_job_is_retried_with_backoff_then_kept_as_failed(pool, tenant):
    async with pool.acquire() as conn:
        call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    worker = Worker(pool, Broken(), options(max_attempts=3, backoff_seconds=3600))
    assert await worker.process_batch() == 1
    async with pool.acquire() as conn:
        [job] = await jobs.jobs_of_call(conn, call_id=call_id)
        assert (job.status, job.attempts) == ("queued", 1)
        assert "model unreachable" in job.last_error
        assert job.run_after > datetime.now(UTC) + timedelta(minutes=59)
        assert await worker.process_batch() == 0  # not due for an hour
        for _ in range(2):  # as if the backoff had passed
            await conn.execute("update analysis_jobs set run_after = now() where id = $1", job.id)
            assert await worker.process_batch() == 1
        [job] = await jobs.jobs_of_call(conn, call_id=call_id)
        assert (job.status, job.attempts) == ("failed", 3)
        assert "ConnectionError: model unreachable" in job.last_error
        assert await analyses.current(conn, call_id=call_id) is None


async def test_workers_share_the_queue_and_analyse_each_call_once(pool, tenant):
    async with pool.acquire() as conn:
        call_ids = [await make_call(conn, organization_id=tenant.organization_id,
                                    started_at=NOW - timedelta(minutes=i)) for i in range(30)]
    workers = [Worker(pool, RulesAnalyser(), options(batch_size=4, name=f"w{i}")) for i in range(3)]
    taken = await asyncio.gather(*(w.drain() for w in workers))
    assert sum(taken) == 30
    async with pool.acquire() as conn:
        for call_id in call_ids:
            assert [v.version for v in await analyses.history(conn, call_id=call_id)] == [1]


async def test_the_jobs_of_a_worker_that_died_are_claimed_after_its_lease(conn, tenant):
    call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    [job] = await jobs.claim(conn, limit=5, lease_seconds=1.5, worker="dead")
    # Within its lease nobody else takes it; once the lease has run out, the next worker does.
    assert await jobs.claim(conn, limit=5, lease_seconds=60, worker="alive") == []
    await asyncio.sleep(1.6)
    assert [j.id for j in await jobs.claim(conn, limit=5, lease_seconds=60, worker="alive")] == [job.id]
    [state] = await jobs.jobs_of_call(conn, call_id=call_id)
    assert (state.id, state.status, state.attempts) == (job.id, "running", 2)


@pytest.mark.parametrize("said, intent", [
    ("I want to cancel my appointment", "cancel"),
    ("There's a charge on my bill I don't understand", "billing"),
    ("Your receptionist was rude, I want to complain", "complaint"),
    ("What time do you open on Saturday?", "question"),
])
async def test_the_rules_analyser_reads_intent_from_what_the_caller_said(conn, tenant, said, intent):
    call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW,
                              turns=[("user", said, None), ("assistant", "I see.", 900.0)], outcome=None)
    [loaded] = await facts.load(conn, call_ids=[call_id])
    result = await analyse_call(RulesAnalyser(), loaded)
    assert result.intent == intent and result.success is False


async def test_a_running_worker_picks_up_calls_as_they_close_until_stopped(pool, tenant):
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(pool, RulesAnalyser(), options()).run(stop))
    async with pool.acquire() as conn:
        call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
        for _ in range(200):
            if await analyses.current(conn, call_id=call_id) is not None:
                break
            await asyncio.sleep(0.05)
        assert (await analyses.current(conn, call_id=call_id)).status == "completed"
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
