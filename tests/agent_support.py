"""Running the real receptionist in LiveKit's text mode against the test database: a demo
tenant, a real Recorder, and a ScriptedLLM that plays the steps a test gives it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from livekit.agents import AgentSession, llm

from agent.call import Caller, FrontDesk, close_call
from agent.providers import Providers
from agent.receptionist import Receptionist
from agent.recording import CallRecording
from agent.routing import route_call
from agent.scripted import ScriptedLLM, Step
from agent.session import build_session
from db.calls.report import CallReport, call_report
from db.demo.seed import NEW_YORK_NUMBER
from db.recorder import Recorder

CALLER_NUMBER = "+12125550188"


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


async def open_call(pool: asyncpg.Pool, recorder: Recorder, *, caller: Caller | None = None,
                    session_id: str | None = None) -> Call:
    """A call to the Midtown demo location from CALLER_NUMBER, started and greeted."""
    caller = caller or Caller(identity="caller", number=CALLER_NUMBER, dialed_number=NEW_YORK_NUMBER,
                              is_sip=True)
    session_id = session_id or f"RM_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        route = await route_call(conn, caller=caller, metadata={}, default_organization_slug=None)
    recorder.start_call(session_id=session_id, room_name="test", caller_number=caller.number,
                        dialed_number=caller.dialed_number)
    recorder.update_call(session_id=session_id, organization_id=route.organization.id,
                         location_id=route.location.id, agent_config_id=route.config.id)
    script = StepQueue()
    desk = FrontDesk(pool=pool, recorder=recorder, caller=caller, session_id=session_id,
                     recording=CallRecording(recorder, session_id=session_id, llm_model="scripted"),
                     organization_id=route.organization.id, location=route.location,
                     config=route.config)
    session = build_session(desk, Providers(llm=ScriptedLLM(script)))
    await session.start(agent=Receptionist(desk, business=route.organization.name))
    desk.served = True
    return Call(desk=desk, session=session, script=script)


async def stored(pool: asyncpg.Pool, session_id: str) -> CallReport:
    async with pool.acquire() as conn:
        report = await call_report(conn, session_id=session_id)
    assert report is not None, f"call {session_id} was not stored"
    return report


def next_open_weekday(after: date | None = None) -> date:
    """A Monday-Thursday at least two days ahead with no demo holiday: Midtown is open 9-12:30
    and 13:30-17:30 then."""
    day = (after or datetime.now(ZoneInfo("America/New_York")).date()) + timedelta(days=2)
    while day.isoweekday() > 4 or day in (date(2026, 11, 26), date(2026, 12, 24), date(2026, 12, 25)):
        day += timedelta(days=1)
    return day


def local(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}"


def spool_dir(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir(exist_ok=True)
    return path
