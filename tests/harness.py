"""What the agent tests share: a call opened as the worker opens one (agent.opening.open_call:
the demo tenant, routed by the dialled number, on record through the real recorder), the real
receptionist in LiveKit's text mode with a model that plays the steps a test gives it, a watcher
for a session's events, and the call as stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from livekit.agents import AgentSession, llm

from agent.call import Caller, FrontDesk, close_call
from agent.opening import open_call
from agent.providers import Providers
from agent.receptionist import Receptionist
from agent.routing import Route, RouteCache
from agent.scripted import ScriptedLLM, Step
from agent.session import build_session
from db.calls import calls, events, messages
from db.calls.report import CallReport, call_report
from db.demo.seed import NEW_YORK_NUMBER, DemoTenant, seed_demo
from db.recorder import Recorder

CALLER_NUMBER = "+12125550188"


async def demo_tenant(pool: asyncpg.Pool) -> DemoTenant:
    async with pool.acquire() as conn:
        return await seed_demo(conn)


async def open_desk(pool: asyncpg.Pool, recorder: Recorder, *, caller: Caller | None = None,
                    session_id: str | None = None, model: str = "scripted",
                    routes: RouteCache | None = None) -> tuple[FrontDesk, Route]:
    """A call from CALLER_NUMBER (a phone caller) to the Midtown demo location, on record and
    routed: what agent.worker.entrypoint has before it builds the session."""
    caller = caller or Caller(identity="caller", number=CALLER_NUMBER, dialed_number=NEW_YORK_NUMBER,
                              is_sip=True)
    session_id = session_id or f"RM_{uuid.uuid4().hex[:12]}"
    return await open_call(pool, recorder, caller=caller, session_id=session_id,
                           room_name=f"room-{session_id}", models={"llm_model": model}, routes=routes)


class StepQueue:
    """A model that does exactly what the test scripted, one step per model call; after the
    script runs out it just acknowledges."""

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self.steps = list(steps)
        self.seen: list[llm.ChatContext] = []

    def extend(self, *steps: Step) -> None:
        self.steps.extend(steps)

    def __call__(self, chat_ctx: llm.ChatContext) -> Step:
        self.seen.append(chat_ctx.copy())
        return self.steps.pop(0) if self.steps else Step(text="Okay.")


@dataclass
class Call:
    desk: FrontDesk
    session: AgentSession
    script: StepQueue

    async def say(self, text: str, *steps: Step):
        """The caller says `text`; the model answers with `steps`. Returns LiveKit's RunResult."""
        self.script.extend(*steps)
        return await self.session.run(user_input=text)

    async def hang_up(self, recorder: Recorder) -> None:
        """The caller leaves: what the worker does when LiveKit reports them gone."""
        close_call(self.desk, reason="caller_hung_up")
        await self.session.aclose()
        assert await recorder.flush(10, session_id=self.desk.session_id)


async def open_text_call(pool: asyncpg.Pool, recorder: Recorder, *, caller: Caller | None = None,
                         session_id: str | None = None, routes: RouteCache | None = None) -> Call:
    """A call opened by open_desk, its session started in text mode (and the caller counted as
    served, as after the greeting)."""
    desk, route = await open_desk(pool, recorder, caller=caller, session_id=session_id, routes=routes)
    script = StepQueue()
    session = build_session(desk, Providers(llm=ScriptedLLM(script)))
    await session.start(agent=Receptionist(desk, business=route.organization.name))
    desk.served = True
    return Call(desk=desk, session=session, script=script)


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


async def stored(pool: asyncpg.Pool, session_id: str) -> CallReport:
    async with pool.acquire() as conn:
        report = await call_report(conn, session_id=session_id)
    assert report is not None, f"call {session_id} was not stored"
    return report


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


def spool_dir(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir(exist_ok=True)
    return path
