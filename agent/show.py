"""Print a stored call the way a person wants to read it."""

from __future__ import annotations

import asyncpg

from agent.speech import spoken_time
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
