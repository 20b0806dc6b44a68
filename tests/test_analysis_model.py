"""The model analyser with the real `openai` client against a scripted OpenAI-compatible server
(tests/fake_openai.py): a valid reply, an invalid one answered again with its errors, two invalid
ones kept as failed with the raw reply, a 429 then success, a timeout retried by the queue; and
the organisation's own intents and fields from its agent configuration."""

from __future__ import annotations

from datetime import UTC, datetime

from openai import AsyncOpenAI

from analysis.model import ModelAnalyser
from analysis.worker import Worker, WorkerOptions
from db.analysis import analyses, jobs
from db.desk import configs
from tests.analysis_helpers import make_call
from tests.fake_openai import Hang, Reply, Status, fake_openai, reply_json

NOW = datetime.now(UTC)
MODEL = "gpt-test"


def analyser(fake, *, timeout: float = 5.0) -> ModelAnalyser:
    client = AsyncOpenAI(api_key="test", base_url=fake.base_url, timeout=timeout, max_retries=2)
    return ModelAnalyser(client, model=MODEL)


async def analyse_one(pool, tenant, script, **call):
    """Store a call, run a worker with the model analyser over the script; the fake, the call."""
    async with pool.acquire() as conn:
        call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW, **call)
    async with fake_openai(script) as fake:
        model = analyser(fake)
        await Worker(pool, model, WorkerOptions(backoff_seconds=0)).drain()
        await model.aclose()
    return fake, call_id


async def test_a_valid_reply_becomes_the_calls_analysis(pool, tenant):
    fake, call_id = await analyse_one(pool, tenant, [Reply(reply_json(follow_ups=["send a reminder"]))])
    async with pool.acquire() as conn:
        stored = await analyses.current(conn, call_id=call_id)
    assert (stored.status, stored.analyser, stored.model_used) == ("completed", "model", MODEL)
    assert (stored.intent, stored.sentiment, stored.agent_quality) == ("book", "positive", 9)
    assert stored.follow_ups == ["send a reminder"] and stored.prompt_version == "analyse-1"
    [request] = fake.requests
    assert request["model"] == MODEL and request["response_format"]["type"] == "json_schema"
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["intent"]["enum"][:3] == ["book", "reschedule", "cancel"]
    assert "I'd like to book a cleaning" in request["messages"][1]["content"]


async def test_an_invalid_reply_is_asked_again_with_its_errors(pool, tenant):
    bad = reply_json(sentiment="furious", quality={"score": 11, "reasoning": "x"})
    fake, call_id = await analyse_one(pool, tenant, [Reply(bad), Reply(reply_json())])
    async with pool.acquire() as conn:
        assert (await analyses.current(conn, call_id=call_id)).status == "completed"
    second = fake.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": bad}
    assert "sentiment" in second[-1]["content"] and "quality.score" in second[-1]["content"]


async def test_a_second_invalid_reply_is_stored_as_failed_with_the_raw_reply(pool, tenant):
    fake, call_id = await analyse_one(pool, tenant, [Reply("not json at all"), Reply('{"summary": 1}')])
    async with pool.acquire() as conn:
        stored = await analyses.current(conn, call_id=call_id)
        [job] = await jobs.jobs_of_call(conn, call_id=call_id)
    assert len(fake.requests) == 2
    assert (stored.status, stored.raw_reply) == ("failed", '{"summary": 1}')
    assert "failed the schema twice" in stored.error and stored.intent is None
    assert job.status == "done"  # a bad answer is an answer: not retried forever


async def test_a_rate_limit_is_retried_by_the_client_then_succeeds(pool, tenant):
    fake, call_id = await analyse_one(pool, tenant, [Status(429), Reply(reply_json())])
    async with pool.acquire() as conn:
        assert (await analyses.current(conn, call_id=call_id)).status == "completed"
    assert len(fake.requests) == 2


async def test_a_timeout_leaves_the_job_to_be_retried_with_its_error(pool, tenant):
    async with pool.acquire() as conn:
        call_id = await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    async with fake_openai([Hang(2.0)]) as fake:
        client = AsyncOpenAI(api_key="test", base_url=fake.base_url, timeout=0.3, max_retries=0)
        worker = Worker(pool, ModelAnalyser(client, model=MODEL),
                        WorkerOptions(backoff_seconds=60, max_attempts=3))
        assert await worker.process_batch() == 1
        await client.close()
    async with pool.acquire() as conn:
        [job] = await jobs.jobs_of_call(conn, call_id=call_id)
        assert (job.status, job.attempts) == ("queued", 1)
        assert "Timeout" in job.last_error
        assert await analyses.current(conn, call_id=call_id) is None


async def test_a_call_without_caller_turns_never_reaches_the_model(pool, tenant):
    fake, call_id = await analyse_one(pool, tenant, [Reply(reply_json())],
                                      turns=[("assistant", "Hello, anyone there?", None)],
                                      status="abandoned", outcome=None)
    async with pool.acquire() as conn:
        stored = await analyses.current(conn, call_id=call_id)
    assert fake.requests == [] and stored.status == "no_conversation"


ORG_ANALYSIS = {"intents": ["new_patient", "existing_patient", "other"],
                "success_rubric": "The caller got a booking or a straight answer.",
                "fields_schema": {"type": "object", "required": ["insurance_provider", "new_patient"],
                                  "properties": {"insurance_provider": {"type": "string"},
                                                 "new_patient": {"type": "boolean"}}}}


async def test_the_organisations_intents_rubric_and_fields_come_from_its_configuration(pool, tenant):
    async with pool.acquire() as conn:
        config = await configs.create_config(
            conn, organization_id=tenant.organization_id, instructions="Be kind.", greeting="Hello.",
            policies={"analysis": ORG_ANALYSIS})
    good = reply_json(intent="new_patient",
                      fields={"insurance_provider": "Aetna", "new_patient": True})
    missing = reply_json(intent="book", fields={})
    fake, call_id = await analyse_one(pool, tenant, [Reply(missing), Reply(good)],
                                      agent_config_id=config.id)
    system = fake.requests[0]["messages"][0]["content"]
    assert "new_patient, existing_patient, other" in system and "straight answer" in system
    schema = fake.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["fields"] == ORG_ANALYSIS["fields_schema"]
    retry = fake.requests[1]["messages"][-1]["content"]
    assert "intent must be one of new_patient" in retry and "insurance_provider" in retry
    async with pool.acquire() as conn:
        stored = await analyses.current(conn, call_id=call_id)
    assert stored.intent == "new_patient"
    assert stored.extraction == {"insurance_provider": "Aetna", "new_patient": True}
