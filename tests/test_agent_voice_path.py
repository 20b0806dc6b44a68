"""The voice path end to end, with fakes only for the speech models and the audio: a caller
speaks into a microphone, LiveKit's AgentSession runs its real pipeline (VAD, STT, end of turn,
LLM, TTS, playout, barge-in) as agent.session.build_session builds it, and the call lands in
Postgres through the real recorder. What LiveKit measures (ChatMessage.metrics) and decides
(transcript confidence, the interrupted flag) must reach voice_messages and call_events."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from livekit.agents import llm
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from agent.providers import Providers
from agent.receptionist import Receptionist, greeting
from agent.scripted import ScriptedLLM, Step, last_user_text
from agent.session import build_session, greet
from db.recorder import Recorder
from tests.fakes import EnergyVAD, FakeTTS, Microphone, ScriptedCaller, ScriptedSTT, Speaker, TextSink
from tests.harness import SessionWatch, demo_tenant, open_desk, stored_call

pytestmark = pytest.mark.db

QUESTION = "Hi, are you open on Saturday?"
OPEN_SATURDAY = "Yes, we are open on Saturday from nine to one."
REQUEST = "Can you tell me about your cleaning service?"
LONG_ANSWER = " ".join([
    "Of course.", "A cleaning takes about forty five minutes with one of our hygienists.",
    "We remove plaque and tartar, polish your teeth, and floss between them.",
    "The dentist then checks your gums and looks for anything that needs attention.",
    "Most insurance plans cover two cleanings a year, and we can check yours before you come.",
    "If it has been a while since your last visit, we may suggest a deeper cleaning instead.",
])
BARGE_IN = "Sorry, I have to go now. Bye!"
GOODBYE = "No problem. Goodbye!"
CONFIDENCE = {QUESTION: 0.91, REQUEST: 0.87, BARGE_IN: 0.78}
SPOKEN_SECONDS = {QUESTION: 0.9, REQUEST: 1.0, BARGE_IN: 0.8}

LLM_DELAY = 0.05  # seconds before the scripted model's first token
TTS_TTFB = 0.05  # seconds before the fake voice's first audio
STT_DELAY = 0.08  # seconds from the end of an utterance (as the VAD cut it) to its transcript
LISTEN_BEFORE_BARGING_IN = 1.0  # seconds of the long answer the caller hears first


def receptionist(chat_ctx: llm.ChatContext) -> Step:
    said = last_user_text(chat_ctx)
    if said == QUESTION:
        return Step(text=OPEN_SATURDAY)
    if said == REQUEST:
        return Step(text=LONG_ANSWER)
    if said == BARGE_IN:
        return Step(text=GOODBYE, calls=[("end_call", {})])
    return Step(text="Sorry, could you say that again?")


def within(value: float | None, low: float, high: float) -> bool:
    """A latency column that is filled, and between `low` and `high` milliseconds."""
    return value is not None and low <= value < high


async def _run_call(desk, route, stt: ScriptedSTT) -> tuple[SessionWatch, Speaker]:
    providers = Providers(llm=ScriptedLLM(receptionist, model="scripted-voice", delay=LLM_DELAY),
                          stt=stt, tts=FakeTTS(ttfb=TTS_TTFB), turn_detection="vad")
    session = build_session(desk, providers, vad=EnergyVAD())
    microphone, speaker = Microphone(), Speaker()
    # As a room's output does: captions follow the audio, so an interrupted reply keeps only
    # the words that were played.
    captions = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=TextSink())
    session.input.audio = microphone
    session.output.audio = captions.audio_output
    session.output.transcription = captions.text_output
    watch = SessionWatch(session)
    caller = ScriptedCaller(microphone, stt)

    def say(line: str):
        return caller.say(line, confidence=CONFIDENCE[line], seconds=SPOKEN_SECONDS[line])

    business = route.organization.name
    await session.start(agent=Receptionist(desk, business=business))
    try:
        await greet(session, desk, greeting(desk, business=business))
        await say(QUESTION)
        await watch.until(lambda: len(watch.messages) == 3)
        spoken_before = watch.agent_states.count("speaking")
        await say(REQUEST)
        await watch.until(lambda: watch.agent_states.count("speaking") > spoken_before)
        await asyncio.sleep(LISTEN_BEFORE_BARGING_IN)
        await say(BARGE_IN)
        await watch.until(lambda: watch.closed)  # the goodbye's end_call closes the session
    finally:
        await session.aclose()
        await captions.aclose()
    return watch, speaker


async def test_voice_call_stores_latencies_confidence_and_the_barge_in(
        pool: asyncpg.Pool, db_dsn: str, tmp_path: Path) -> None:
    recorder = Recorder(db_dsn, spool_dir=tmp_path, name="voice")
    await recorder.start()
    session_id = f"voice-{uuid.uuid4().hex[:12]}"
    stt = ScriptedSTT(delay=STT_DELAY)
    try:
        await demo_tenant(pool)
        desk, route = await open_desk(pool, recorder, session_id=session_id, model="scripted-voice")
        watch, speaker = await _run_call(desk, route, stt)
        assert await recorder.flush(5.0, session_id=session_id)
    finally:
        await recorder.close()
    stored = await stored_call(pool, session_id)
    rows = stored.messages

    # The pipeline heard each utterance once, as the VAD cut it, and the barge-in stopped the
    # long answer part way.
    assert [h.text for h in stt.heard] == [QUESTION, REQUEST, BARGE_IN] and stt.unexpected == 0
    interrupted_playout = [seconds for seconds, interrupted in speaker.played if interrupted]
    assert len(interrupted_playout) == 1 and 0 < interrupted_playout[0] < 3

    # Every turn, in order, as said: the interrupted answer keeps only what was played.
    greeting_text = watch.messages[0].text_content
    cut = rows[4].content
    assert cut and len(cut) < len(LONG_ANSWER) and LONG_ANSWER.startswith(cut)
    assert [(r.sequence_number, r.role, r.content) for r in rows] == [
        (0, "assistant", greeting_text),
        (1, "user", QUESTION),
        (2, "assistant", OPEN_SATURDAY),
        (3, "user", REQUEST),
        (4, "assistant", cut),
        (5, "user", BARGE_IN),
        (6, "assistant", GOODBYE),
    ]
    assert [r.item_id for r in rows] == [m.id for m in watch.messages]
    assert [r.interrupted for r in rows] == [False, False, False, False, True, False, False]
    assert [r.transcript_confidence for r in rows] == [
        None, pytest.approx(0.91), None, pytest.approx(0.87), None, pytest.approx(0.78), None]
    started = [r.started_at for r in rows]
    assert None not in started and started == sorted(started)

    # The caller's turns: how long after they stopped speaking the transcript came and the turn
    # ended, and when they spoke.
    for user in (rows[1], rows[3], rows[5]):
        assert within(user.transcription_delay_ms, STT_DELAY * 1000, 2000), user
        assert within(user.end_of_turn_delay_ms, user.transcription_delay_ms, 3000), user
        spoke = (user.ended_at - user.started_at).total_seconds()
        assert spoke == pytest.approx(SPOKEN_SECONDS[user.content], abs=0.2), user
        assert user.llm_ttft_ms is None and user.tts_ttfb_ms is None and user.e2e_latency_ms is None

    # The agent's replies: model and voice latency, and end to end from the caller's last word
    # to the agent's first, which includes the end-of-turn wait.
    for reply, asked in ((rows[2], rows[1]), (rows[4], rows[3]), (rows[6], rows[5])):
        assert within(reply.llm_ttft_ms, LLM_DELAY * 1000, 2000), reply
        assert within(reply.tts_ttfb_ms, TTS_TTFB * 1000, 2000), reply
        assert within(reply.e2e_latency_ms, asked.end_of_turn_delay_ms, 5000), reply
        assert reply.started_at < reply.ended_at
        assert reply.transcription_delay_ms is None and reply.end_of_turn_delay_ms is None
        assert reply.model_used == "scripted-voice"

    # The greeting was spoken (TTS) but answered no one: no model, no end-to-end figure.
    assert within(rows[0].tts_ttfb_ms, TTS_TTFB * 1000, 2000)
    assert rows[0].llm_ttft_ms is None and rows[0].e2e_latency_ms is None

    # The barge-in is an event of its own; the goodbye's tool ended the call.
    assert stored.event_types == ["interruption", "tool_call", "call_ended", "tool_result"]
    assert stored.events[0].payload == {"item_id": rows[4].item_id}
    assert stored.events[1].payload["name"] == "end_call"
    call = stored.call
    assert (call.status, call.end_reason, call.closed_by) == ("completed", "agent_ended_call", "agent")
    assert call.connected_at is not None and call.ended_at is not None
    speakers = {"user": "Caller", "assistant": "Agent"}
    assert call.transcript == "\n".join(f"{speakers[r.role]}: {r.content}" for r in rows)
