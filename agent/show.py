"""Print a stored call the way a person wants to read it."""

from __future__ import annotations

import asyncpg

from agent.speech import spoken_time
from db.analysis import analyses
from db.calls.report import call_report


def _ms(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


async def print_call(conn: asyncpg.Connection, *, session_id: str) -> None:
    report = await call_report(conn, session_id=session_id)
    if report is None:
        print(f"No call {session_id} in the database.")
        return
    call = report.call
    print(f"\n=== Stored call {call.session_id} ===")
    print(f"status={call.status} end_reason={call.end_reason} outcome={call.outcome} "
          f"duration={call.duration_seconds}s tokens={call.total_tokens_used} "
          f"caller={call.caller_number} dialed={call.dialed_number}")
    print("\nTranscript (voice_messages; latency in ms: transcription / end-of-turn / LLM TTFT / "
          "TTS TTFB / end-to-end):")
    for m in report.messages:
        latency = " / ".join(_ms(v) for v in (m.transcription_delay_ms, m.end_of_turn_delay_ms,
                                              m.llm_ttft_ms, m.tts_ttfb_ms, m.e2e_latency_ms))
        print(f"  #{m.sequence_number} {m.role:9} [{latency}] tokens={m.tokens_used} {m.content}")
    print("\nEvents (call_events):")
    for e in report.events:
        print(f"  {e.sequence:>4} {e.event_type:22} {e.severity:7} {e.payload}")
    print("\nAppointments made or changed by this call:")
    for a in report.appointments or [{}]:
        if not a:
            print("  none")
            continue
        print(f"  {a['confirmation_code']} {a['status']}: {a['service']} for {a['customer_name']} "
              f"on {spoken_time(a['starts_at'], a['timezone'])} with {a['provider'] or 'any provider'} "
              f"at {a['location']}")


async def print_analysis(conn: asyncpg.Connection, *, call_id) -> None:
    """The call's current analysis (call_analyses), saying which analyser made it."""
    a = await analyses.current(conn, call_id=call_id)
    if a is None:
        print("\nNo analysis of this call yet (is an analysis worker running?).")
        return
    made_by = f"the model {a.model_used}" if a.model_used else f"the offline {a.analyser} analyser"
    print(f"\n=== Analysis v{a.version} ({a.status}), made by {made_by} ===")
    print(f"summary: {a.summary}")
    print(f"intent={a.intent} journey={a.journey_stage} sentiment={a.sentiment} "
          f"confidence={'-' if a.confidence is None else f'{a.confidence:.2f}'}")
    print(f"success={a.success} ({a.success_reason})")
    print(f"agent quality={a.agent_quality}/10 ({a.quality_reasoning})")
    if a.extraction:
        print(f"fields: {a.extraction}")
    print(f"follow-ups: {'; '.join(a.follow_ups) or 'none'}")
