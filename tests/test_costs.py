"""What a call cost (sql/0012: model_prices, call_usage_lines, call_costs, unpriced_usage), from a
real text-mode call: the receptionist, its tools and the recorder, with the scripted model, whose
usage LiveKit collects as it would a real model's."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from livekit import rtc
from livekit.agents.metrics.usage import ModelUsageCollector

from agent.call import Caller
from agent.scripted import Step
from agent.session import record_usage
from db.calls import calls
from db.demo.seed import NEW_YORK_NUMBER
from tests.clock import local, next_open_weekday
from tests.fakes import FakeTTS, ScriptedSTT
from tests.harness import CALLER_NUMBER, open_text_call

pytestmark = pytest.mark.db

PHONE_CALLER = Caller(identity="caller", number=CALLER_NUMBER, dialed_number=NEW_YORK_NUMBER,
                      is_sip=True, sip_call_id="SCL_costs")
SIP_INBOUND_PER_MINUTE = Decimal("0.0085")  # the seeded list price
PER_ANALYSIS = Decimal("0.001")

ADD_PRICE = """
insert into model_prices (kind, provider, model, effective_from, per_million_input_tokens,
                          per_million_cached_input_tokens, per_million_output_tokens)
values ('llm', 'scripted', 'scripted', $1, $2, $3, $4)
"""


def rounded(value: Decimal, places: int) -> Decimal:
    """As Postgres's round(numeric, places): halves away from zero (Python's round() goes to even)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


async def booking_call(pool, recorder):
    """A phone call that books a cleaning, hung up and its usage recorded as the worker does."""
    call = await open_text_call(pool, recorder, caller=PHONE_CALLER)
    day = next_open_weekday()
    await call.say(f"Book me a cleaning on {day} at ten, I'm Jane Doe",
                   Step(calls=[("book_appointment", {"service": "cleaning",
                                                     "start_time": local(day, "10:00"),
                                                     "customer_name": "Jane Doe"})]),
                   Step(text="You're booked."))
    await call.say("What time do you open?", Step(text="We open at nine."))
    await call.hang_up(recorder)
    record_usage(call.session, call.desk)
    assert await recorder.flush(10, session_id=call.desk.session_id)
    [usage] = [u for u in call.session.usage.model_usage if u.type == "llm_usage"]
    return call, usage


async def cost_of(conn, call_id):
    return await conn.fetchrow("select * from call_costs where call_id = $1", call_id)


async def kpis_of(conn, call):
    return await conn.fetchrow(
        "select * from call_kpis_daily where location_id = $1", call.desk.location.id)


async def test_a_text_mode_call_is_priced_from_its_usage_and_shows_in_the_kpis(pool, recorder):
    async with pool.acquire() as conn:
        started = await conn.fetchval("select now() - interval '1 day'")
        await conn.execute(ADD_PRICE, started, Decimal("1.5"), Decimal("0.75"), Decimal("6"))
    call, usage = await booking_call(pool, recorder)
    # The scripted model reports usage like a real one: instructions and tool schemas count.
    assert usage.input_tokens > 1000 and usage.output_tokens > 0
    assert 0 < usage.input_cached_tokens < usage.input_tokens

    async with pool.acquire() as conn:
        cost = await cost_of(conn, call.desk.call_id)
        stored = await conn.fetchrow(
            "select duration_seconds, model_usage from voice_calls where id = $1", call.desk.call_id)
        assistant_turns = await conn.fetchval(
            "select count(*) from voice_messages where call_id = $1 and role = 'assistant'",
            call.desk.call_id)
        kpis = await kpis_of(conn, call)

    assert [u["type"] for u in stored["model_usage"]] == ["llm_usage"]
    uncached = usage.input_tokens - usage.input_cached_tokens
    llm = (uncached * Decimal("1.5") + usage.input_cached_tokens * Decimal("0.75")
           + usage.output_tokens * Decimal("6")) / 1_000_000
    telephony = max(1, math.ceil(stored["duration_seconds"] / 60)) * SIP_INBOUND_PER_MINUTE
    # Text mode hears and speaks no audio: no STT or TTS usage, so nothing to pay (not unpriced).
    assert (cost["stt"], cost["tts"], cost["analysis"]) == (0, 0, 0)
    assert cost["llm"] == llm and cost["telephony"] == telephony
    assert cost["total"] == llm + telephony
    assert (cost["currency"], cost["unpriced"], cost["turns"]) == ("USD", None, assistant_turns)
    assert cost["cost_per_turn"] == rounded(cost["total"] / assistant_turns, 8)

    assert (kpis["calls"], kpis["answered"], kpis["bookings"], kpis["abandoned"],
            kpis["transferred"], kpis["unpriced_calls"]) == (1, 1, 1, 0, 0, 0)
    assert (kpis["containment_rate"], kpis["booking_conversion"]) == (1, 1)
    assert kpis["cost_per_call"] == rounded(cost["total"], 6)
    assert kpis["cost_per_booking"] == rounded(cost["total"], 6)
    assert kpis["agent_config_version"] is not None

    # An analysis written after the call (issue 13) adds its price, to the call and its day.
    async with pool.acquire() as conn:
        await conn.execute("insert into call_analyses (call_id, summary) values ($1, 'booked')",
                           call.desk.call_id)
        analysed = await cost_of(conn, call.desk.call_id)
        kpis = await kpis_of(conn, call)
    assert analysed["analysis"] == PER_ANALYSIS
    assert analysed["total"] == llm + telephony + PER_ANALYSIS
    assert kpis["cost_per_call"] == rounded(analysed["total"], 6)

    # The offline rules analyser calls no model: its analysis is priced, at nothing.
    async with pool.acquire() as conn:
        await conn.execute("update call_analyses set analyser = 'rules' where call_id = $1",
                           call.desk.call_id)
        by_rules = await cost_of(conn, call.desk.call_id)
    assert by_rules["analysis"] == 0 and by_rules["total"] == llm + telephony
    assert by_rules["unpriced"] in (None, [])


async def test_an_unpriced_model_gives_null_costs_and_is_listed_until_it_has_a_price(pool, recorder):
    call, usage = await booking_call(pool, recorder)
    call_id = call.desk.call_id
    async with pool.acquire() as conn:
        cost = await cost_of(conn, call_id)
        listed = await conn.fetch("select * from unpriced_usage where call_id = $1", call_id)
        kpis = await kpis_of(conn, call)
    assert cost["llm"] is None and cost["total"] is None and cost["cost_per_turn"] is None
    assert cost["telephony"] == SIP_INBOUND_PER_MINUTE  # what has a price keeps it
    assert cost["unpriced"] == ["llm:scripted/scripted"]
    assert [(r["kind"], r["provider"], r["model"], r["input_tokens"], r["reason"]) for r in listed] == [
        ("llm", "scripted", "scripted", usage.input_tokens, "no price for this provider and model")]
    assert (kpis["calls"], kpis["unpriced_calls"], kpis["cost_per_call"]) == (1, 1, None)

    async with pool.acquire() as conn:
        # A price from before the call, and a newer one: the call pays the one in effect then.
        await conn.execute(ADD_PRICE, cost["started_at"].replace(year=2020), 1, 1, 1)
        await conn.execute(ADD_PRICE, cost["started_at"].replace(year=2999), 100, 100, 100)
        # A known price missing for a quantity used is unpriced too: no cached-input price.
        await conn.execute("update model_prices set per_million_cached_input_tokens = null "
                           "where provider = 'scripted' and effective_from < now()")
        missing = await conn.fetch("select reason from unpriced_usage where call_id = $1", call_id)
        await conn.execute("update model_prices set per_million_cached_input_tokens = 1 "
                           "where provider = 'scripted'")
        refolded = await conn.fetchval("select kpi_refold($1, now() + interval '1 minute')",
                                       cost["started_at"])
        priced = await cost_of(conn, call_id)
        kpis = await kpis_of(conn, call)
    assert [r["reason"] for r in missing] == ["a price for a quantity used is missing"]
    assert refolded == 1
    assert priced["llm"] == Decimal(usage.input_tokens + usage.output_tokens) / 1_000_000
    assert priced["unpriced"] is None
    assert (kpis["unpriced_calls"], kpis["cost_per_call"]) == (0, rounded(priced["total"], 6))


async def test_a_web_call_pays_no_telephony_and_unrecorded_usage_is_not_free(pool, recorder):
    call = await open_text_call(pool, recorder, caller=Caller(identity="web-visitor",
                                                               dialed_number=NEW_YORK_NUMBER))
    await call.say("hello", Step(text="Hi there."))
    await call.hang_up(recorder)
    async with pool.acquire() as conn:
        await conn.execute(ADD_PRICE, datetime(2020, 1, 1, tzinfo=UTC), 1, 1, 1)
        unrecorded = await cost_of(conn, call.desk.call_id)
    record_usage(call.session, call.desk)
    assert await recorder.flush(10, session_id=call.desk.session_id)
    async with pool.acquire() as conn:
        kinds = await conn.fetch("select kind from call_usage_lines where call_id = $1",
                                 call.desk.call_id)
        cost = await cost_of(conn, call.desk.call_id)
    assert (unrecorded["total"], unrecorded["unpriced"]) == (None, ["usage:agent/not recorded"])
    assert [k["kind"] for k in kinds] == ["llm"]
    assert cost["telephony"] == 0 and cost["total"] == cost["llm"] > 0


REPLY = "Sure, which day suits you?"


async def voice_usage() -> list[dict]:
    """What LiveKit's usage collector makes of the fake voice's metrics: 1.5 s heard, one reply
    spoken (as AgentSession.usage.model_usage holds it)."""
    collector = ModelUsageCollector()
    stt, tts = ScriptedSTT(delay=0), FakeTTS(ttfb=0)
    stt.on("metrics_collected", collector)
    tts.on("metrics_collected", collector)
    stt.expect("I'd like a cleaning", confidence=0.9)
    await stt.recognize(rtc.AudioFrame.create(16000, 1, 24000))
    async with tts.synthesize(REPLY) as stream:
        async for _ in stream:
            pass
    return [u.model_dump(mode="json") for u in collector.flatten()]


async def test_speech_is_priced_per_audio_minute_and_per_million_characters(conn):
    usage = await voice_usage()
    call = await calls.start_call(conn, session_id="RM_voice")
    await calls.update_call(conn, session_id="RM_voice", model_usage=usage)
    await conn.execute(
        """insert into model_prices (kind, provider, model, effective_from, per_audio_minute,
                                     per_million_characters)
           values ('stt', 'tests', 'scripted', '2020-01-01', 0.0060, null),
                  ('tts', 'tests', 'tone', '2020-01-01', 0, 30)""")
    cost = await cost_of(conn, call.id)
    [tts] = [u for u in usage if u["type"] == "tts_usage"]
    assert tts["characters_count"] == len(REPLY) and tts["audio_duration"] > 0
    assert cost["stt"] == Decimal("1.5") / 60 * Decimal("0.0060")
    assert cost["tts"] == Decimal(len(REPLY)) / 1_000_000 * 30
    assert cost["total"] == cost["stt"] + cost["tts"]
