"""What the agent tests share: a call opened the way the worker opens one (the demo tenant,
routed by the dialled number, on record through the real recorder), a watcher for the
session's events, and the call as stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from livekit.agents import llm

from agent.call import Caller, FrontDesk
from agent.recording import CallRecording
from agent.routing import Route, route_call
from db.calls import calls, events, messages
from db.demo.seed import NEW_YORK_NUMBER, seed_demo

CALLER_NUMBER = "+12125550177"


async def open_call(pool: asyncpg.Pool, recorder: Any, *, session_id: str,
                    model: str) -> tuple[FrontDesk, Route]:
    """Seed the demo tenant, route a caller to the New York number, and put the call on record:
    what agent.worker.entrypoint does before it builds the session."""
    caller = Caller(identity="test-caller", number=CALLER_NUMBER, dialed_number=NEW_YORK_NUMBER)
    async with pool.acquire() as conn:
        await seed_demo(conn)
        route = await route_call(conn, caller=caller, metadata={}, default_organization_slug=None)
    recorder.start_call(session_id=session_id, room_name=f"room-{session_id}",
                        caller_number=caller.number, dialed_number=caller.dialed_number)
    recorder.update_call(session_id=session_id, organization_id=route.organization.id,
                         location_id=route.location.id,
                         agent_config_id=route.config.id if route.config else None, llm_model=model)
    desk = FrontDesk(pool=pool, recorder=recorder, caller=caller, session_id=session_id,
                     recording=CallRecording(recorder, session_id=session_id, llm_model=model),
                     organization_id=route.organization.id, location=route.location,
                     config=route.config)
    return desk, route


class SessionWatch:
    """The session's chat messages and agent states as they happen, and a way to wait on them."""

    def __init__(self, session: Any) -> None:
        self.messages: list[llm.ChatMessage] = []
        self.agent_states: list[str] = []
        self.closed = False
        self._changed = asyncio.Event()
        session.on("conversation_item_added", self._on_item)
        session.on("agent_state_changed", self._on_state)
        session.on("close", self._on_close)

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _on_item(self, event: Any) -> None:
        if isinstance(event.item, llm.ChatMessage):
            self.messages.append(event.item)
            self._poke()

    def _on_state(self, event: Any) -> None:
        self.agent_states.append(event.new_state)
        self._poke()

    def _on_close(self, _event: Any) -> None:
        self.closed = True
        self._poke()

    async def until(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        """Wait until `condition()` holds, re-checked at each event; fail after `within` s."""
        async with asyncio.timeout(within):
            while not condition():
                await self._changed.wait()


@dataclass(frozen=True)
class StoredCall:
    call: calls.Call
    messages: list[messages.Message]
    events: list[events.StoredEvent]

    @property
    def event_types(self) -> list[str]:
        return [e.event_type for e in self.events]


async def stored_call(pool: asyncpg.Pool, session_id: str) -> StoredCall:
    async with pool.acquire() as conn:
        call = await calls.get_call(conn, session_id=session_id)
        assert call is not None, f"no call {session_id} in voice_calls"
        return StoredCall(call=call,
                          messages=await messages.list_messages(conn, session_id=session_id),
                          events=await events.list_events(conn, session_id=session_id))
