"""What the e2e tests share: placing a WebRTC call into a stack, waiting for its record to
settle in Postgres, and reporting the voice-to-voice latencies the caller measured."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from livekit import api

from db.calls.messages import Message
from db.calls.report import CallReport, call_report
from db.demo.seed import NEW_YORK_NUMBER
from tests.e2e.caller import Caller, Turn, caller_token
from tests.e2e.services import CallStack

T = TypeVar("T")


async def create_room(stack: CallStack, *, prefix: str = "e2e") -> tuple[str, str]:
    """A room for a call to the Midtown number: (name, SID). The location rides in the room's
    metadata, as a web widget or a dispatcher would put it."""
    assert stack.livekit is not None
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    async with api.LiveKitAPI(stack.livekit.http_url, stack.livekit.api_key,
                              stack.livekit.api_secret) as lk:
        room = await lk.room.create_room(api.CreateRoomRequest(
            name=name, metadata=json.dumps({"location_number": NEW_YORK_NUMBER})))
    return name, room.sid


def dial(stack: CallStack, room: str, *, identity: str = "web-caller", name: str = "Web Caller",
         kind: api.AccessToken.ParticipantKind | None = None,
         attributes: dict[str, str] | None = None) -> Caller:
    """A caller for `room` (joining creates it, if nobody has), of `kind` with `attributes`."""
    assert stack.livekit is not None
    token = caller_token(stack.livekit.api_key, stack.livekit.api_secret, room=room,
                         identity=identity, name=name, kind=kind, attributes=attributes)
    return Caller(stack.livekit.ws_url, token)


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, within: float,
               what: str, interval: float = 0.25) -> T:
    """Call `fetch` until `done(value)`; the last value goes in the error when it never is."""
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached after {within:.0f}s; last seen: {value!r}")
        await asyncio.sleep(interval)


async def settled_report(conn: asyncpg.Connection, session_id: str, *, status: str,
                         within: float = 30.0) -> CallReport:
    """The call's report once it is closed with `status` and LiveKit's room_finished is stored."""

    async def fetch() -> tuple[CallReport | None, bool]:
        finished = await conn.fetchval(
            "select count(*) from webhook_events where room_sid = $1 and event = 'room_finished'",
            session_id)
        return await call_report(conn, session_id=session_id), finished > 0

    report, _ = await poll(
        fetch, lambda v: v[0] is not None and v[0].call.status == status and v[1],
        within=within, what=f"call {session_id} {status} with room_finished stored")
    assert report is not None
    return report


def _ms(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.0f}"


def _stages(turn: Turn, user: Message | None, reply: Message | None) -> str:
    """Where the time went, from LiveKit's figures for the turn (ms): from the end of speech (as
    the agent's VAD placed it) to the final transcript, the end of turn, and the agent's first
    audio out; the reply's first token and first audio, each counted from its own request; and
    what the caller's measure adds (the audio's way there and back, jitter buffers included)."""
    if user is None or reply is None:
        return ""
    heard = (None if turn.voice_to_voice is None or reply.e2e_latency_ms is None
             else turn.voice_to_voice * 1000 - reply.e2e_latency_ms)
    return (f"  [transcript {_ms(user.transcription_delay_ms)}, end of turn "
            f"{_ms(user.end_of_turn_delay_ms)}, llm ttft {_ms(reply.llm_ttft_ms)}, tts ttfb "
            f"{_ms(reply.tts_ttfb_ms)}, agent speaks {_ms(reply.e2e_latency_ms)}, caller hears "
            f"+{_ms(heard).strip()}]")


def _turn_messages(report: CallReport | None) -> list[tuple[Message, Message | None]]:
    """Each caller message with the agent's reply to it (the next assistant message)."""
    if report is None:
        return []
    pairs, messages = [], report.messages
    for i, message in enumerate(messages):
        if message.role == "user":
            reply = next((m for m in messages[i + 1:] if m.role == "assistant"), None)
            pairs.append((message, reply))
    return pairs


def latency_summary(turns: list[Turn], report: CallReport | None = None) -> str:
    """Each turn's voice-to-voice latency as the caller heard it and, given the call's report,
    where the time went (LiveKit's per-turn figures, stored in voice_messages) and how often the
    agent was interrupted, falsely or not."""
    pairs = _turn_messages(report)
    lines = []
    for i, turn in enumerate(turns):
        ours = "no reply" if turn.voice_to_voice is None else f"{turn.voice_to_voice * 1000:5.0f} ms"
        user, reply = pairs[i] if i < len(pairs) else (None, None)
        lines.append(f"  turn {i + 1}: {ours}{_stages(turn, user, reply)}  <- {turn.text!r}")
    figures = [t.voice_to_voice for t in turns if t.voice_to_voice is not None]
    if figures:
        lines.append(f"  median {statistics.median(figures) * 1000:.0f} ms over {len(figures)} turns")
    if report is not None:
        kinds = Counter(e.event_type for e in report.events)
        lines.append(f"  interruptions {kinds['interruption']}, "
                     f"false interruptions {kinds['false_interruption']}")
    return ("voice-to-voice latency (caller stops speaking -> first agent audio at the caller; "
            "stages in ms after the agent's end of speech):\n" + "\n".join(lines))
