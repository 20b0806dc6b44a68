"""When the caller's turn ends and how soon the reply follows: the endpointing delays are policies
of the agent configuration, and the reply is generated preemptively, while the end of turn is
still being waited for. The voice path runs as in tests/test_agent_voice_path.py (LiveKit's real
pipeline, fakes for the speech models and the audio), and the figures are the ones stored."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import asyncpg
import pytest
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from agent.providers import Providers
from agent.receptionist import Receptionist, greeting
from agent.scripted import ScriptedLLM, Step
from agent.session import build_session, greet, turn_handling
from db.calls.messages import Message
from db.demo.seed import seed_demo
from db.desk import configs
from db.desk.configs import InvalidPolicy
from db.recorder import Recorder
from tests.fakes import EnergyVAD, FakeTTS, Microphone, ScriptedCaller, ScriptedSTT, Speaker, TextSink
from tests.harness import SessionWatch, demo_tenant, open_desk, stored_call

pytestmark = pytest.mark.db

QUESTION = "Hi, are you open on Saturday?"
ANSWER = "Yes, from nine to one."
STT_DELAY = 0.05
VAD_SILENCE = 0.2  # the utterance ends for the VAD this long after the last word


async def one_turn(pool: asyncpg.Pool, db_dsn: str, tmp_path: Path, *, policies: dict,
                   llm_delay: float = 0.05) -> tuple[Message, Message]:
    """A call whose configuration has `policies` on top of the demo's, in which the caller asks one
    question: the caller's stored turn and the agent's stored reply."""
    recorder = Recorder(db_dsn, spool_dir=tmp_path, name="turns")
    await recorder.start()
    session_id = f"turns-{uuid.uuid4().hex[:12]}"
    try:
        await demo_tenant(pool)
        desk, route = await open_desk(pool, recorder, session_id=session_id, model="scripted-turns")
        assert desk.config is not None
        desk.config = dataclasses.replace(desk.config, policies={**desk.config.policies, **policies})
        stt = ScriptedSTT(delay=STT_DELAY)
        providers = Providers(llm=ScriptedLLM(lambda _: Step(text=ANSWER), delay=llm_delay),
                              stt=stt, tts=FakeTTS(), turn_detection="vad")
        session = build_session(desk, providers, vad=EnergyVAD(min_silence=VAD_SILENCE))
        microphone = Microphone()
        captions = TranscriptSynchronizer(next_in_chain_audio=Speaker(), next_in_chain_text=TextSink())
        session.input.audio = microphone
        session.output.audio = captions.audio_output
        session.output.transcription = captions.text_output
        watch = SessionWatch(session)
        business = route.organization.name
        await session.start(agent=Receptionist(desk, business=business))
        try:
            await greet(session, desk, greeting(desk, business=business))
            await ScriptedCaller(microphone, stt).say(QUESTION, confidence=0.9, seconds=0.8)
            await watch.until(lambda: len(watch.messages) == 3)
        finally:
            await session.aclose()
            await captions.aclose()
        assert await recorder.flush(5.0, session_id=session_id)
    finally:
        await recorder.close()
    rows = (await stored_call(pool, session_id)).messages
    assert [(r.role, r.content) for r in rows[1:]] == [("user", QUESTION), ("assistant", ANSWER)]
    return rows[1], rows[2]


async def test_the_endpointing_policies_decide_when_the_callers_turn_ends(pool, db_dsn, tmp_path):
    patient, _ = await one_turn(pool, db_dsn, tmp_path / "patient",
                                policies={"min_endpointing_delay_ms": 1200})
    brisk, _ = await one_turn(pool, db_dsn, tmp_path / "brisk",
                              policies={"min_endpointing_delay_ms": 250})
    # Measured from the caller's last word: the patient desk waits out its 1.2 s; the brisk one
    # ends the turn as soon as the transcript is in (VAD silence + STT), well before LiveKit's
    # default of 0.5 s.
    assert 1200 <= patient.end_of_turn_delay_ms < 2000, patient
    assert patient.transcription_delay_ms < 600, patient
    assert brisk.end_of_turn_delay_ms < 480, brisk


async def test_the_reply_is_generated_while_the_end_of_turn_is_awaited(pool, db_dsn, tmp_path):
    slow_model = 0.6
    asked, reply = await one_turn(pool, db_dsn, tmp_path, llm_delay=slow_model,
                                  policies={"min_endpointing_delay_ms": 1200})
    # The model started on the final transcript, 1 s before the turn ended, so the reply plays
    # sooner after the end of turn than the model's own first-token time.
    assert reply.llm_ttft_ms >= slow_model * 1000, reply
    assert reply.e2e_latency_ms - asked.end_of_turn_delay_ms < slow_model * 1000, (asked, reply)


def test_the_endpointing_policies_reach_the_session_and_preemptive_generation_is_on():
    handling = turn_handling({"min_endpointing_delay_ms": 300, "max_endpointing_delay_ms": 2500},
                             "vad")
    assert handling == {"turn_detection": "vad", "preemptive_generation": {"enabled": True},
                        "endpointing": {"min_delay": 0.3, "max_delay": 2.5}}
    # Unset or unusable values leave LiveKit's defaults: a bad config never stops the call.
    assert "endpointing" not in turn_handling({"min_endpointing_delay_ms": "fast"})
    assert "endpointing" not in turn_handling({})


async def test_endpointing_policies_are_whole_milliseconds_with_min_below_max(conn):
    demo = await seed_demo(conn)
    config = await configs.create_config(
        conn, organization_id=demo.organization_id, instructions="x", greeting="y",
        policies={"min_endpointing_delay_ms": 300, "max_endpointing_delay_ms": 2500})
    assert config.policies["min_endpointing_delay_ms"] == 300
    for bad in ({"min_endpointing_delay_ms": 0.3}, {"max_endpointing_delay_ms": -1},
                {"min_endpointing_delay_ms": 900, "max_endpointing_delay_ms": 800}):
        with pytest.raises(InvalidPolicy):
            await configs.create_config(conn, organization_id=demo.organization_id,
                                        instructions="x", greeting="y", policies=bad)
