"""The four analytics views of 0001 on a small known data set, against answers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from db import ids
from db.calls import calls, events, messages, participants
from db.calls.events import Event
from db.calls.messages import Message

pytestmark = pytest.mark.db



def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def days_ago(days: int) -> datetime:
    """Midnight UTC `days` days ago."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)


@pytest.fixture
async def utc(conn):
    # The views bucket by day in the session's time zone.
    await conn.execute("set timezone to 'UTC'")
    return conn


async def call(conn, sid: str, *, started_at: datetime, status: str | None = None, **kw):
    await calls.start_call(conn, session_id=sid, started_at=started_at, **kw)
    if status == "active":
        await calls.mark_connected(conn, session_id=sid, connected_at=started_at + timedelta(seconds=20))
    elif status is not None:
        await calls.finish_call(
            conn, session_id=sid, status=status, ended_at=started_at + timedelta(minutes=3),
            closed_by="agent",
        )


async def join(conn, sid, psid, identity, *, name=None, joined, left=None):
    await participants.upsert_participant(
        conn, session_id=sid, participant_sid=psid, identity=identity, name=name,
        joined_at=joined, left_at=left,
    )


async def test_active_calls_summary_lists_active_calls_with_who_is_in_them(utc):
    conn = utc
    ada = await conn.fetchval(
        "insert into users (email, full_name) values ('ada@example.com', 'Ada Lovelace') returning id"
    )
    await calls.start_call(conn, session_id="RM_a", started_at=ago(120), user_id=ada,
                           caller_number="+15550100")
    await calls.mark_connected(conn, session_id="RM_a", connected_at=ago(100))
    await join(conn, "RM_a", "PA_agent", "agent-1", joined=ago(100))
    await join(conn, "RM_a", "PA_caller", "sip_+15550100", name="Caller", joined=ago(110))
    await join(conn, "RM_a", "PA_bob", "bob", name="Bob", joined=ago(90), left=ago(50))
    await call(conn, "RM_b", started_at=ago(30))
    await calls.mark_connected(conn, session_id="RM_b", connected_at=ago(30))
    await call(conn, "RM_c", started_at=ago(300), status="active")
    await join(conn, "RM_c", "PA_gone", "gone", joined=ago(290), left=ago(10))
    await call(conn, "RM_done", started_at=ago(600), status="completed")
    await call(conn, "RM_pending", started_at=ago(5))

    rows = {r["session_id"]: r for r in await conn.fetch("select * from active_calls_summary")}
    assert set(rows) == {"RM_a", "RM_b", "RM_c"}
    a = rows["RM_a"]
    assert (a["user_name"], a["user_email"], a["caller_number"]) == (
        "Ada Lovelace", "ada@example.com", "+15550100")
    assert a["participant_count"] == 2
    assert a["participant_names"] == ["Caller", "agent-1"]  # by join time; Bob has left
    assert abs(a["elapsed_seconds"] - 100) <= 5  # from connection (start was 120 s ago)
    b = rows["RM_b"]
    assert (b["user_name"], b["participant_count"], b["participant_names"]) == (None, 0, [])
    assert abs(b["elapsed_seconds"] - 30) <= 5
    c = rows["RM_c"]
    assert (c["participant_count"], c["participant_names"]) == (0, [])


async def test_call_analytics_counts_messages_by_role_and_latency(utc):
    conn = utc
    await call(conn, "RM_talk", started_at=ago(600), status="completed")
    await call(conn, "RM_silent", started_at=ago(500), status="abandoned")
    talk = ids.call_id("RM_talk")
    turns = [
        Message(call_id=talk, sequence_number=0, item_id="s", role="system", tokens_used=50),
        Message(call_id=talk, sequence_number=1, item_id="a1", role="assistant", e2e_latency_ms=800,
                interrupted=True, tokens_used=30),
        Message(call_id=talk, sequence_number=2, item_id="u1", role="user", tokens_used=0),
        Message(call_id=talk, sequence_number=3, item_id="a2", role="assistant", e2e_latency_ms=1200,
                tokens_used=40),
    ]
    await messages.append_messages(conn, messages=turns)

    rows = {r["session_id"]: dict(r) for r in await conn.fetch("select * from call_analytics")}
    assert set(rows) == {"RM_talk", "RM_silent"}
    counted = ("message_count", "user_messages", "assistant_messages", "system_messages",
               "interrupted_messages", "avg_e2e_latency_ms", "max_e2e_latency_ms", "total_tokens_used",
               "duration_seconds", "status")
    assert {k: rows["RM_talk"][k] for k in counted} == {
        "message_count": 4, "user_messages": 1, "assistant_messages": 2, "system_messages": 1,
        "interrupted_messages": 1, "avg_e2e_latency_ms": 1000, "max_e2e_latency_ms": 1200,
        "total_tokens_used": 120, "duration_seconds": 180, "status": "completed",
    }
    assert {k: rows["RM_silent"][k] for k in counted} == {
        "message_count": 0, "user_messages": 0, "assistant_messages": 0, "system_messages": 0,
        "interrupted_messages": 0, "avg_e2e_latency_ms": None, "max_e2e_latency_ms": None,
        "total_tokens_used": 0, "duration_seconds": 180, "status": "abandoned",
    }


async def test_conversation_success_rate_per_day_over_ended_calls(utc):
    conn = utc
    two_days_ago, yesterday = days_ago(2), days_ago(1)
    day1, day2 = two_days_ago + timedelta(hours=12), yesterday + timedelta(hours=12)
    statuses_day1 = ["completed", "completed", "completed", "failed", "abandoned", "active", None]
    for n, status in enumerate(statuses_day1):
        await call(conn, f"RM_d1_{n}", started_at=day1 + timedelta(minutes=n), status=status)
    for n, status in enumerate(["completed", "failed", "failed"]):
        await call(conn, f"RM_d2_{n}", started_at=day2 + timedelta(minutes=n), status=status)
    await call(conn, "RM_old", started_at=days_ago(40), status="completed")

    rows = [dict(r) for r in await conn.fetch("select * from conversation_success_rate order by date")]
    assert rows == [
        {"date": two_days_ago, "success_rate": Decimal("60.00"), "total_conversations": 5,
         "completed": 3, "failed": 1, "abandoned": 1},
        {"date": yesterday, "success_rate": Decimal("33.33"), "total_conversations": 3,
         "completed": 1, "failed": 2, "abandoned": 0},
    ]


async def test_error_rate_by_type_over_the_last_seven_days(utc):
    conn = utc
    await call(conn, "RM_e1", started_at=ago(3 * 86400), status="failed")
    await call(conn, "RM_e2", started_at=ago(10 * 86400), status="failed")
    e1, e2 = ids.call_id("RM_e1"), ids.call_id("RM_e2")

    def event(call_id, key, kind, payload, severity, seconds_ago):
        return Event(id=ids.event_id(call_id, key), call_id=call_id, event_type=kind,
                     payload=payload, severity=severity, occurred_at=ago(seconds_ago))

    await events.append_events(conn, events=[
        event(e1, "1", "error", {"error_type": "stt_timeout"}, "error", 3600),
        event(e1, "2", "error", {"error_type": "stt_timeout"}, "critical", 7200),
        event(e2, "3", "error", {"error_type": "stt_timeout"}, "error", 86400),
        event(e2, "4", "error", {"detail": "no type"}, "warning", 60),
        event(e2, "5", "error", {"error_type": "llm_rate_limit"}, "critical", 8 * 86400),
        event(e1, "6", "tool_call", {"error_type": "not_an_error"}, "info", 60),
    ])

    rows = [dict(r) for r in await conn.fetch("select * from error_rate_by_type order by error_type")]
    assert rows == [
        {"error_type": "stt_timeout", "error_count": 3, "critical_count": 1, "calls_affected": 2},
        {"error_type": "unknown", "error_count": 1, "critical_count": 0, "calls_affected": 1},
    ]
