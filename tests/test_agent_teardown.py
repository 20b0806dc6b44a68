"""A call torn down in the middle of a turn: the model goes quiet on its second reply and the
job goes away, either closing the session as livekit-agents' job shutdown does or not at all
(the entrypoint task cancelled). Then the worker's closing path runs (agent.call.close_call,
the usage event, recorder.flush), as agent.worker._finish runs it. The call must still end with
a status and a reason, with every finished turn stored and nothing of the unfinished reply."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import asyncpg
import pytest
from livekit.agents import llm

from agent.call import close_call
from agent.providers import Providers
from agent.receptionist import Receptionist, greeting
from agent.scripted import ScriptedLLM, Step, last_user_text
from agent.session import build_session, greet, record_usage
from db.recorder import Recorder
from tests.harness import SessionWatch, demo_tenant, open_desk, stored_call

pytestmark = pytest.mark.db

QUESTION = "Do you have parking near the office?"
PARKING = "Yes, the garage next door validates two hours of parking."
SECOND = "Great. Can I book a cleaning next Monday?"
NEVER_SAID = "Let me check Monday for you."
STALL = 3600.0  # seconds: the model never answers


class Model:
    """The scripted model, which answers the first question and then goes quiet."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.llm = ScriptedLLM(self.policy, model="scripted-teardown")
        self.stalling = asyncio.Event()

    def policy(self, chat_ctx: llm.ChatContext) -> Step:
        said = last_user_text(chat_ctx)
        self.asked.append(said)
        if said == QUESTION:
            return Step(text=PARKING)
        self.llm.delay = STALL
        self.stalling.set()
        return Step(text=NEVER_SAID)


@pytest.mark.parametrize("teardown", ["session_closed", "task_cancelled"])
async def test_call_torn_down_mid_turn_keeps_its_finished_turns(
        pool: asyncpg.Pool, db_dsn: str, tmp_path: Path, teardown: str) -> None:
    recorder = Recorder(db_dsn, spool_dir=tmp_path, name="teardown")
    await recorder.start()
    session_id = f"teardown-{uuid.uuid4().hex[:12]}"
    model = Model()
    session = None
    try:
        await demo_tenant(pool)
        desk, route = await open_desk(pool, recorder, session_id=session_id, model="scripted-teardown")
        session = build_session(desk, Providers(llm=model.llm))
        watch = SessionWatch(session)
        business = route.organization.name

        async def job() -> None:  # the job's entrypoint, then the caller's turns
            await session.start(agent=Receptionist(desk, business=business))
            await greet(session, desk, greeting(desk, business=business))
            await session.run(user_input=QUESTION)
            await session.run(user_input=SECOND)

        running = asyncio.create_task(job())
        async with asyncio.timeout(10):
            await model.stalling.wait()
        await asyncio.sleep(0.2)  # the turn hangs on the model

        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        if teardown == "session_closed":
            # livekit-agents' job shutdown closes the primary session with aclose() before it
            # runs the shutdown callbacks.
            async with asyncio.timeout(10):
                await session.aclose()
        # What agent.worker._finish then does (less LiveKit's session report, which needs a
        # JobContext).
        close_call(desk, reason="job_shutdown")
        record_usage(session, desk)
        assert await recorder.flush(5.0, session_id=session_id)
        stored = await stored_call(pool, session_id)
        finished = list(watch.messages)
    finally:
        if session is not None:
            await session.aclose()  # after a cancelled job, the call is closed already
        await recorder.close()

    # The model was asked for the second reply, which never came.
    assert model.asked[-1] == SECOND
    # Every finished turn, the caller's last words included, and nothing of the reply.
    rows = stored.messages
    assert [(r.sequence_number, r.role, r.content) for r in rows] == [
        (0, "assistant", greeting(desk, business=route.organization.name)),
        (1, "user", QUESTION),
        (2, "assistant", PARKING),
        (3, "user", SECOND),
    ]
    assert [r.item_id for r in rows] == [m.id for m in finished]
    assert not any(r.interrupted for r in rows)
    assert stored.event_types == ["usage"]
    # Greeted, so served: agent/call.py counts the call completed; the reason says how it ended.
    call = stored.call
    assert (call.status, call.end_reason, call.outcome, call.closed_by) == (
        "completed", "job_shutdown", "no_action", "agent")
    assert call.connected_at is not None and call.ended_at is not None
    assert call.transcript == "\n".join([
        f"Agent: {rows[0].content}", f"Caller: {QUESTION}", f"Agent: {PARKING}", f"Caller: {SECOND}"])
