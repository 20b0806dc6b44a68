"""LiveKit webhooks as livekit-server sends them, for the webhook service's tests and benchmark.

Events are livekit.protocol WebhookEvent messages serialised to JSON with protobuf's JSON
mapping (camelCase names, int64 as strings), as the server does with protojson. Each delivery
is signed as the server signs it: a JWT from AccessToken(key, secret) carrying the base64
SHA-256 of the exact body, sent as the bare `Authorization` header value (no "Bearer").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken
from livekit.protocol.egress import EgressInfo, EgressStatus
from livekit.protocol.models import ParticipantInfo, TrackInfo, TrackSource, TrackType
from livekit.protocol.webhook import WebhookEvent

from db.calls.lifecycle import AGENT_LEFT_OPEN
from webhooks.app import RUNNER_OPTIONS, WEBHOOK_PATH, create_app
from webhooks.verify import WebhookVerifier

API_KEY, API_SECRET = "devkey", "secret"
OLD_KEY, OLD_SECRET = "oldkey", "an-older-secret-still-accepted"
T0 = 1_760_000_000  # a fixed epoch second: every event time is T0 + an offset
CALLER_NUMBER, DIALED_NUMBER, SIP_CALL_ID = "+15551230001", "+15559870002", "SCL_abc123"


def body_of(event: WebhookEvent) -> bytes:
    return MessageToJson(event).encode()


def sign(body: bytes, *, key: str = API_KEY, secret: str = API_SECRET,
         ttl: timedelta | None = None) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = AccessToken(key, secret).with_sha256(digest)
    if ttl is not None:
        token = token.with_ttl(ttl)
    return token.to_jwt()


def delivery(event: WebhookEvent, **signing) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery, as livekit-server posts it."""
    body = body_of(event)
    return body, {"Authorization": sign(body, **signing), "Content-Type": "application/webhook+json"}


def _event(name: str, room_sid: str, at: int, event_id: str | None = None) -> WebhookEvent:
    event = WebhookEvent(event=name, id=event_id or f"EV_{uuid.uuid4().hex[:12]}", created_at=T0 + at)
    if room_sid:
        event.room.sid = room_sid
        event.room.name = f"call-{room_sid}"
    return event


def room_event(name: str, room_sid: str, at: int, event_id: str | None = None) -> WebhookEvent:
    return _event(name, room_sid, at, event_id)


@dataclass(frozen=True)
class Person:
    sid: str
    identity: str
    kind: int
    joined: int  # offset from T0, as LiveKit's ParticipantInfo.joined_at
    name: str | None = None
    attributes: dict | None = None

    def info(self) -> ParticipantInfo:
        info = ParticipantInfo(sid=self.sid, identity=self.identity, kind=self.kind,
                               joined_at=T0 + self.joined, name=self.name or "",
                               state=ParticipantInfo.State.ACTIVE)
        info.attributes.update(self.attributes or {})
        return info


def sip_caller(sid: str = "PA_caller", joined: int = 1) -> Person:
    return Person(sid, "sip_+15551230001", ParticipantInfo.Kind.SIP, joined, name="Caller",
                  attributes={"sip.phoneNumber": CALLER_NUMBER, "sip.trunkPhoneNumber": DIALED_NUMBER,
                              "sip.callID": SIP_CALL_ID})


def agent(sid: str = "PA_agent", joined: int = 2) -> Person:
    return Person(sid, "agent-AJ_1", ParticipantInfo.Kind.AGENT, joined, name="Front desk",
                  attributes={"lk.agent.state": "initializing"})


def participant_event(name: str, room_sid: str, at: int, person: Person,
                      event_id: str | None = None) -> WebhookEvent:
    event = _event(name, room_sid, at, event_id)
    event.participant.CopyFrom(person.info())
    return event


def track_event(name: str, room_sid: str, at: int, person: Person, *, track_sid: str = "TR_audio",
                muted: bool = False, event_id: str | None = None) -> WebhookEvent:
    event = participant_event(name, room_sid, at, person, event_id)
    event.track.CopyFrom(TrackInfo(sid=track_sid, type=TrackType.AUDIO, source=TrackSource.MICROPHONE,
                                   muted=muted, mime_type="audio/opus"))
    return event


def egress_ended(room_sid: str, at: int, location: str, event_id: str | None = None) -> WebhookEvent:
    event = _event("egress_ended", "", at, event_id)
    info = EgressInfo(egress_id="EG_1", room_id=room_sid, room_name=f"call-{room_sid}",
                      status=EgressStatus.EGRESS_COMPLETE)
    info.file_results.add(filename="call.ogg", location=location)
    event.egress_info.CopyFrom(info)
    return event


def realistic_call(room_sid: str = "RM_call") -> dict[str, WebhookEvent]:
    """The webhooks of one answered SIP call, by what happened: the caller dials in, the agent
    joins, the caller's audio is published, the caller hangs up, the agent leaves, the room
    closes. Event ids are fixed per room so two runs deliver the same events."""
    caller, desk = sip_caller(), agent()
    return {
        "room_started": room_event("room_started", room_sid, 0, f"EV_{room_sid}_1"),
        "caller_joined": participant_event("participant_joined", room_sid, 1, caller,
                                           f"EV_{room_sid}_2"),
        "agent_joined": participant_event("participant_joined", room_sid, 2, desk, f"EV_{room_sid}_3"),
        "track_published": track_event("track_published", room_sid, 3, caller,
                                       event_id=f"EV_{room_sid}_4"),
        "caller_left": participant_event("participant_left", room_sid, 60, caller, f"EV_{room_sid}_5"),
        "agent_left": participant_event("participant_left", room_sid, 61, desk, f"EV_{room_sid}_6"),
        "room_finished": room_event("room_finished", room_sid, 62, f"EV_{room_sid}_7"),
    }


def verifier() -> WebhookVerifier:
    return WebhookVerifier({API_KEY: API_SECRET, OLD_KEY: OLD_SECRET})


@contextlib.asynccontextmanager
async def webhook_client(pool: asyncpg.Pool, **app_options) -> AsyncIterator[TestClient]:
    """A test client of the real application on a real socket, served as the service serves it."""
    app = create_app(pool=pool, verifier=verifier(), **app_options)
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)  # TestServer's own constructor drops them
    async with TestClient(server) as client:
        yield client


async def post(client: TestClient, event: WebhookEvent, **signing):
    body, headers = delivery(event, **signing)
    return await client.post(WEBHOOK_PATH, data=body, headers=headers)


# --- the rows of a call, normalised for comparison ----------------------------------------------------

# Columns left out: set from the clock at write time (created_at, updated_at, received_at, and
# call_events.call_created_at, its call's created_at: the partition key, sql/0016), an
# identity that numbers rows in arrival order (call_events.sequence), a random key
# (call_participants.id). Everything else must be identical whatever the arrival order.
CALL_ROWS = {
    "voice_calls": ("select * from voice_calls where session_id = $1", ("created_at", "updated_at")),
    "call_participants": (
        "select * from call_participants where call_id = (select id from voice_calls "
        "where session_id = $1) order by participant_sid", ("id", "created_at", "updated_at")),
    "call_events": (
        "select * from call_events where call_id = (select id from voice_calls "
        "where session_id = $1) order by id", ("sequence", "created_at", "call_created_at")),
    "webhook_events": (
        "select * from webhook_events where room_sid = $1 order by event_id", ("received_at",)),
}


def at(offset: float) -> datetime:
    """The timestamptz of T0 + offset, as the service stores event times."""
    return datetime.fromtimestamp(T0 + offset, UTC)


async def call_rows(conn: asyncpg.Connection, session_id: str) -> dict[str, list[dict]]:
    rows = {}
    for table, (query, ignored) in CALL_ROWS.items():
        rows[table] = [
            {k: v for k, v in dict(r).items() if k not in ignored}
            for r in await conn.fetch(query, session_id)
        ]
    return rows


def check_realistic_call(rows: dict, session_id: str) -> None:
    """What the webhooks of realistic_call() alone must leave, whatever their order."""
    [call] = rows["voice_calls"]
    assert (call["status"], call["end_reason"], call["closed_by"]) == ("failed", AGENT_LEFT_OPEN, "webhook")
    assert (call["caller_number"], call["dialed_number"], call["sip_call_id"]) == (
        CALLER_NUMBER, DIALED_NUMBER, SIP_CALL_ID)
    assert (call["started_at"], call["connected_at"], call["ended_at"]) == (at(0), at(2), at(62))
    assert call["duration_seconds"] == 60 and call["room_name"] == f"call-{session_id}"
    by_sid = {p["participant_sid"]: p for p in rows["call_participants"]}
    assert (by_sid["PA_caller"]["joined_at"], by_sid["PA_caller"]["left_at"]) == (at(1), at(60))
    assert (by_sid["PA_agent"]["joined_at"], by_sid["PA_agent"]["left_at"]) == (at(2), at(61))
    assert by_sid["PA_caller"]["kind"] == "sip" and by_sid["PA_caller"]["participant_type"] == "user"
    assert by_sid["PA_agent"]["kind"] == "agent" and by_sid["PA_agent"]["participant_type"] == "agent"
    assert by_sid["PA_caller"]["attributes"]["sip.phoneNumber"] == CALLER_NUMBER
    assert [e["event_type"] for e in rows["call_events"]] == ["track_published"]
    assert len(rows["webhook_events"]) == 7
