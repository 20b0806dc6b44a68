"""What each verified LiveKit webhook does to the call record.

Every write goes through the repositories the agent uses (db.calls: calls, participants,
events), whose upserts merge: the earliest start, join and connection win, the latest leave and end win,
the first writer fills a blank, a closed call never reopens. Times come from the event
(`created_at`, or the participant's own `joined_at`), never from our clock, so the same events
give the same rows in any arrival order. What depends on several events (the verdict on a call
the agent never closed, mute state, the recording) is recomputed from stored rows
(db.calls.lifecycle) each time one of them arrives.

The caller owns the transaction: `record` stores the event in webhook_events and applies its
effect, and both must commit or roll back together.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
from livekit.protocol.egress import EgressStatus
from livekit.protocol.models import ParticipantInfo, TrackSource, TrackType
from livekit.protocol.webhook import WebhookEvent

from db import ids
from db.calls import calls, events, lifecycle, participants, sip, webhook_events
from db.calls.calls import Call
from db.calls.events import Event
from db.desk import locations
from webhooks import fields
from webhooks.errors import InvalidWebhookEvent

log = logging.getLogger(__name__)

PARTICIPANT_EVENTS = ("participant_joined", "participant_left", "participant_connection_aborted")
TRACK_EVENTS = ("track_published", "track_unpublished")
ROOM_EVENTS = ("room_started", "room_finished", *PARTICIPANT_EVENTS, *TRACK_EVENTS)


def validate(event: WebhookEvent) -> None:
    """Reject, before anything is written, an event whose effect would need what it lacks."""
    if event.event in ROOM_EVENTS and not event.room.sid:
        raise InvalidWebhookEvent(f"{event.event} without a room SID")
    if event.event in PARTICIPANT_EVENTS + TRACK_EVENTS and not (
        event.participant.sid and event.participant.identity
    ):
        raise InvalidWebhookEvent(f"{event.event} without a participant SID and identity")
    if event.event in TRACK_EVENTS and not event.track.sid:
        raise InvalidWebhookEvent(f"{event.event} without a track SID")


def outcome(event: WebhookEvent) -> str:
    """'applied' when the event changes the call record, 'ignored' when it is only stored."""
    if event.event == "egress_ended":
        return "applied" if event.egress_info.room_id else "ignored"
    return "applied" if event.event in _HANDLERS else "ignored"


async def record(conn: asyncpg.Connection, event: WebhookEvent, *, payload: Any) -> str | None:
    """Store `event` and apply its effect; None when it was stored before (a redelivery), which
    changes nothing. `payload` is the body as LiveKit sent it, kept in webhook_events."""
    validate(event)
    result = outcome(event)
    fresh = await webhook_events.insert_webhook_event(
        conn,
        event_id=event.id,
        event=event.event,
        payload=payload,
        created_at=fields.event_time(event),
        room_sid=event.room.sid or event.egress_info.room_id or None,
        room_name=event.room.name or event.egress_info.room_name or None,
        participant_sid=event.participant.sid or None,
        outcome=result,
    )
    if not fresh:
        return None
    if result == "applied":
        await apply(conn, event)
    return result


async def record_group(
    conn: asyncpg.Connection, deliveries: list[tuple[WebhookEvent, str]]
) -> list[str | None]:
    """`record` for several (event, body as JSON text) at once, in one transaction: their
    webhook_events rows in one statement, then the effect of each new one, in order. An event
    given twice is applied once; its second copy is a duplicate (None)."""
    for event, _ in deliveries:
        validate(event)
    fresh = await webhook_events.insert_webhook_events(conn, events=[
        webhook_events.NewWebhookEvent(
            event_id=event.id, event=event.event, body=body, created_at=fields.event_time(event),
            room_sid=event.room.sid or event.egress_info.room_id or None,
            room_name=event.room.name or event.egress_info.room_name or None,
            participant_sid=event.participant.sid or None, outcome=outcome(event),
        ) for event, body in deliveries])
    results: list[str | None] = []
    for event, _ in deliveries:
        if event.id not in fresh:
            results.append(None)
            continue
        fresh.discard(event.id)
        result = outcome(event)
        if result == "applied":
            await apply(conn, event)
        results.append(result)
    return results


async def apply(conn: asyncpg.Connection, event: WebhookEvent) -> None:
    """The effect of one event on its call (no deduplication: see `record`)."""
    call = await _HANDLERS[event.event](conn, event, fields.event_time(event))
    if call.closed_by == "webhook":
        # This event may change who was in the room: judge the unattended call again.
        await lifecycle.settle_unattended_call(conn, session_id=call.session_id)


# --- handlers: each returns its call as _ensure_call found it, before the rest of its change -----


async def _room_started(conn: asyncpg.Connection, event: WebhookEvent, at: datetime) -> Call:
    return await _ensure_call(conn, event, at)


async def _room_finished(conn: asyncpg.Connection, event: WebhookEvent, at: datetime) -> Call:
    call = await _ensure_call(conn, event, at)
    verdict = await lifecycle.unattended_verdict(conn, session_id=call.session_id)
    # Fills only a call nobody closed; the agent's own closing, before or after, outranks it.
    await calls.finish_call(
        conn, session_id=call.session_id, status=verdict.status, end_reason=verdict.end_reason,
        ended_at=at, closed_by="webhook",
    )
    return call


async def _participant_event(conn: asyncpg.Connection, event: WebhookEvent, at: datetime) -> Call:
    joined = event.event == "participant_joined"
    p = event.participant
    call = await _ensure_call(conn, event, at)
    joined_at = fields.joined_at(p) or (at if joined else None)
    await _upsert_participant(
        conn, call, p, joined_at=joined_at, left_at=None if joined else at,
        # The attributes at join describe the participant; later events carry attributes that
        # changed since (agent state ...) and would make the merge depend on arrival order.
        attributes=dict(p.attributes) if joined else None,
    )
    if joined and fields.kind(p) == sip.SIP:
        await _route(conn, call, fields.sip_numbers(p).dialed_number)
    if joined and fields.kind(p) == sip.AGENT:
        # The agent's arrival connects the caller to the front desk. Only the agent itself marks
        # the call active, once it has greeted: the webhook fills connected_at, nothing more.
        await calls.mark_connected(
            conn, session_id=call.session_id, connected_at=joined_at, activate=False
        )
    return call


async def _track_event(conn: asyncpg.Connection, event: WebhookEvent, at: datetime) -> Call:
    p, track = event.participant, event.track
    call = await _ensure_call(conn, event, at)
    await _log_event(conn, call, event, at, {
        "participant_sid": p.sid, "identity": p.identity, "track_sid": track.sid,
        "track_type": fields.enum_name(TrackType, track.type),
        "source": fields.enum_name(TrackSource, track.source),
        "muted": track.muted, "mime_type": track.mime_type or None,
    })
    # Mute state is the latest audio track event's, whatever order they came in.
    muted = await lifecycle.latest_audio_mute(conn, call_id=call.id, participant_sid=p.sid)
    await _upsert_participant(
        conn, call, p, joined_at=fields.joined_at(p), left_at=None, attributes=None,
        is_muted=muted,
    )
    return call


async def _egress_ended(conn: asyncpg.Connection, event: WebhookEvent, at: datetime) -> Call:
    egress = event.egress_info
    call = await calls.start_call(
        conn, session_id=egress.room_id, room_name=egress.room_name or None, started_at=at,
        savepoint=False,
    )
    location = fields.recording_location(egress)
    await _log_event(conn, call, event, at, {
        "egress_id": egress.egress_id, "status": fields.enum_name(EgressStatus, egress.status),
        "location": location, "error": egress.error or None,
    })
    latest = await lifecycle.latest_recording_location(conn, call_id=call.id)
    if latest is not None:
        await calls.update_call(conn, session_id=call.session_id, recording_url=latest)
    return call


_Handler = Callable[[asyncpg.Connection, WebhookEvent, datetime], Awaitable[Call]]
_HANDLERS: dict[str, _Handler] = {
    "room_started": _room_started,
    "room_finished": _room_finished,
    "participant_joined": _participant_event,
    "participant_left": _participant_event,
    "participant_connection_aborted": _participant_event,
    "track_published": _track_event,
    "track_unpublished": _track_event,
    "egress_ended": _egress_ended,
}


# --- shared steps ----------------------------------------------------------------------------------


async def _ensure_call(conn: asyncpg.Connection, event: WebhookEvent, at: datetime) -> Call:
    """The event's call, created if this is the first we hear of it (webhooks may arrive before
    room_started). A SIP participant brings the caller's and the dialed number. Its row lock,
    held to the end of the transaction, serialises the events of one call. No savepoint: a lost
    race on the call's keys fails the transaction, which webhooks/commits.py retries whole."""
    numbers = fields.sip_numbers(event.participant).given() if event.participant.sid else {}
    return await calls.start_call(
        conn, session_id=event.room.sid, room_name=event.room.name or None, started_at=at,
        savepoint=False, **numbers,
    )


async def _route(conn: asyncpg.Connection, call: Call, dialed_number: str | None) -> None:
    """Route an inbound SIP call to the location whose number was dialed, when nobody has.
    Done on the SIP participant's join only: one lookup per call, and the same in any order."""
    if not dialed_number:
        return
    location = await locations.find_location_by_number(conn, phone_number=dialed_number)
    if location is None:
        log.info("call %s: no active location has its dialed number", call.session_id)
        return
    await lifecycle.route_to_location(
        conn, session_id=call.session_id, location_id=location.id,
        organization_id=location.organization_id,
    )


async def _upsert_participant(
    conn: asyncpg.Connection,
    call: Call,
    p: ParticipantInfo,
    *,
    joined_at: datetime | None,
    left_at: datetime | None,
    attributes: dict | None,
    is_muted: bool | None = None,
) -> None:
    kind = fields.kind(p)
    await participants.upsert_participant(
        conn, session_id=call.session_id, participant_sid=p.sid, identity=p.identity,
        name=p.name or None, participant_type="agent" if kind == sip.AGENT else "user", kind=kind,
        attributes=attributes, joined_at=joined_at, left_at=left_at, is_muted=is_muted,
    )


async def _log_event(
    conn: asyncpg.Connection,
    call: Call,
    event: WebhookEvent,
    at: datetime,
    payload: dict,
) -> None:
    """The event in the call's own log; its id derives from the webhook's, so it is written once."""
    await events.append_events(conn, events=[Event(
        id=ids.event_id(call.id, event.id), call_id=call.id, event_type=event.event,
        payload={"webhook_event_id": event.id, **payload}, occurred_at=at,
    )])
