"""/v1/calls: the call log, one call's detail, its transcript."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api import pagination
from api.auth import Reader
from api.problems import ApiProblem
from db import audit
from db.calls import browse, events, kpi_views, messages, participants
from db.calls.browse import Analysis, CallFilters, CallSummary, TouchedAppointment
from db.calls.kpi_views import CallCost
from db.desk.phone import normalize_phone

router = APIRouter(prefix="/calls", tags=["calls"])

CallStatus = Literal["pending", "active", "completed", "failed", "abandoned"]
Sentiment = Literal["positive", "neutral", "negative", "friction", "mixed"]  # sql/0011 adds friction


class CallPage(BaseModel):
    items: list[CallSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class Turn(BaseModel):
    sequence_number: int
    role: str
    content: str
    interrupted: bool
    started_at: datetime | None
    ended_at: datetime | None
    transcription_delay_ms: float | None
    end_of_turn_delay_ms: float | None
    llm_ttft_ms: float | None
    tts_ttfb_ms: float | None
    e2e_latency_ms: float | None
    tokens_used: int
    model_used: str | None


class TimelineEvent(BaseModel):
    sequence: int
    event_type: str
    severity: str
    turn_index: int | None
    occurred_at: datetime
    payload: dict


class Participant(BaseModel):
    participant_identity: str
    participant_name: str | None
    participant_type: str
    kind: str
    joined_at: datetime | None
    left_at: datetime | None
    duration_seconds: int | None


class CallDetail(BaseModel):
    call: CallSummary
    participants: list[Participant]
    turns: list[Turn]
    events: list[TimelineEvent]
    analysis: Analysis | None
    appointments: list[TouchedAppointment]
    recording_url: str | None
    cost: CallCost | None = Field(description="issue 14's call_costs row: a part no price covers is null, "
                                              "and so is the total (`unpriced` names it)")


Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("", response_model=CallPage, summary="List calls, newest first (keyset pages)")
async def list_calls(
    caller: Reader,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    location_id: uuid.UUID | None = None,
    status: CallStatus | None = None,
    outcome: Annotated[str | None, Query(max_length=100)] = None,
    caller_number: Annotated[str | None, Query(max_length=40)] = None,
    agent_config_id: uuid.UUID | None = None,
    sentiment: Sentiment | None = None,
    intent: Annotated[str | None, Query(max_length=100)] = None,
    min_latency_ms: Annotated[float | None, Query(ge=0, le=600_000)] = None,
    sort: Literal["-started_at", "started_at"] = "-started_at",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
) -> CallPage:
    number = None
    if caller_number is not None:
        number = normalize_phone(caller_number)
        if number is None:
            raise ApiProblem(422, "caller_number: not a phone number")
    filters = CallFilters(
        organization_id=caller.organization_id, started_from=started_from, started_to=started_to,
        location_id=location_id, status=status, outcome=outcome, caller_number=number,
        agent_config_id=agent_config_id, sentiment=sentiment, intent=intent, min_latency_ms=min_latency_ms)
    rows = await browse.list_calls(caller.conn, filters=filters, after=pagination.decode(cursor),
                                   newest_first=sort == "-started_at", limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = pagination.encode(page[-1].started_at, page[-1].id) if more else None
    return CallPage(items=page, next_cursor=next_cursor)


async def _summary(caller: Reader, call_id: uuid.UUID) -> CallSummary:
    summary = await browse.get_call_summary(caller.conn, call_id=call_id)
    if summary is None:  # RLS: another organisation's call is not there at all
        raise ApiProblem(404, f"no call with id {call_id}")
    return summary


@router.get("/{call_id}", response_model=CallDetail, summary="One call: turns, events, analysis")
async def get_call(caller: Reader, call_id: uuid.UUID) -> CallDetail:
    summary = await _summary(caller, call_id)
    conn, session_id = caller.conn, summary.session_id
    # Issue 16: each read of a call's detail is audited, in the request's transaction (the
    # subject is the call's id: no caller data).
    await audit.record(conn, actor=caller.actor, action=audit.CALL_READ, row_count=1,
                       organization_id=caller.organization_id, subject=f"call:{call_id}")
    return CallDetail(
        call=summary,
        participants=[Participant.model_validate(p, from_attributes=True)
                      for p in await participants.list_participants(conn, session_id=session_id)],
        turns=[Turn.model_validate(m, from_attributes=True)
               for m in await messages.list_messages(conn, session_id=session_id)],
        events=[TimelineEvent.model_validate(e, from_attributes=True)
                for e in await events.list_events(conn, session_id=session_id)],
        analysis=await browse.get_analysis(conn, call_id=call_id),
        appointments=await browse.appointments_touched(conn, call_id=call_id),
        recording_url=summary.recording_url,
        cost=await kpi_views.call_cost(conn, call_id=call_id),
    )


@router.get("/{call_id}/transcript", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
            summary="The call's turns as plain text, one line each")
async def get_transcript(caller: Reader, call_id: uuid.UUID) -> PlainTextResponse:
    summary = await _summary(caller, call_id)
    turns = await messages.list_messages(caller.conn, session_id=summary.session_id)
    lines = [f"[{t.started_at:%H:%M:%S}] {t.role}: {t.content}" if t.started_at else f"{t.role}: {t.content}"
             for t in turns if t.content]
    return PlainTextResponse("\n".join(lines) + ("\n" if lines else ""))
