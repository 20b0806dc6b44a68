"""What recording costs a turn: the same scripted text-mode conversation with the recording on
(CallRecording + Recorder writing to Postgres) and off, alternated call by call in one run.

    uv run python bench/turn_overhead.py [--calls 16] [--turns 30]

Prints per-variant median turn time and CPU per call, then `recorded_vs_unrecorded=` (the ratio
of median turn times; target <= 1.01) for a scripted model that answers after a realistic delay
(--model-latency, default 0.3 s: a hosted LLM's time to first token is rarely under that), and
`recorded_vs_unrecorded_instant_model=` for a model that answers at once: the worst case, where
the recorder's writes compete with nothing but the turn itself."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from agent.call import Caller, FrontDesk
from agent.providers import Providers
from agent.receptionist import Receptionist
from agent.recording import CallRecording
from agent.routing import route_call
from agent.scripted import ScriptedLLM, Step, last_user_text
from agent.session import build_session
from agent.settings import Settings
from db.demo.seed import NEW_YORK_NUMBER, seed_demo
from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from db.pool import connect, create_pool
from db.recorder import Recorder, RecorderOptions

# As the worker configures its recorder (RECORDER_FLUSH_SECONDS).
FLUSH_INTERVAL = Settings.model_fields["recorder_flush_seconds"].default
QUESTIONS = ["do you have parking", "how much is a cleaning", "do you take insurance"]


def policy(chat_ctx):
    """Every fourth caller line asks a question the knowledge base answers; the rest get talk."""
    said = last_user_text(chat_ctx)
    if chat_ctx.items and getattr(chat_ctx.items[-1], "type", "") == "function_call_output":
        return Step(text="Here is what I found for you: " + chat_ctx.items[-1].output[:120])
    if said.startswith("question:"):
        return Step(calls=[("answer_question", {"question": said.removeprefix("question:")})])
    return Step(text=f"Thanks, I noted that: {said}. Is there anything else I can help with today?")


def caller_line(turn: int) -> str:
    if turn % 4 == 3:
        return "question:" + QUESTIONS[turn // 4 % len(QUESTIONS)]
    return f"This is line {turn} of the call, about my appointment next week."


async def one_call(pool, recorder, route, *, turns: int, record: bool,
                   latency: float) -> tuple[list[float], float]:
    session_id = f"bench-{uuid.uuid4().hex[:12]}"
    caller = Caller(identity="bench", number="+12125550111", dialed_number=NEW_YORK_NUMBER)
    if record:
        recorder.start_call(session_id=session_id, caller_number=caller.number)
    desk = FrontDesk(pool=pool, recorder=recorder, caller=caller, session_id=session_id,
                     recording=CallRecording(recorder, session_id=session_id),
                     organization_id=route.organization.id, location=route.location,
                     config=route.config, served=True)
    session = build_session(desk, Providers(llm=ScriptedLLM(policy, delay=latency)), record=record)
    cpu = time.process_time()
    await session.start(agent=Receptionist(desk, business=route.organization.name))
    times = []
    for turn in range(turns):
        start = time.perf_counter()
        await session.run(user_input=caller_line(turn))
        times.append(time.perf_counter() - start)
    await session.aclose()
    if record:
        await recorder.flush(30, session_id=session_id)
    return times, time.process_time() - cpu


async def compare(pool, recorder, route, *, calls: int, turns: int, latency: float) -> float:
    """Alternate recorded and unrecorded calls; print and return the ratio of median turn times."""
    await one_call(pool, recorder, route, turns=4, record=True, latency=latency)  # warm up
    await one_call(pool, recorder, route, turns=4, record=False, latency=latency)
    results = {True: ([], []), False: ([], [])}
    for i in range(calls * 2):
        record = i % 2 == 0
        times, cpu = await one_call(pool, recorder, route, turns=turns, record=record,
                                    latency=latency)
        results[record][0].extend(times)
        results[record][1].append(cpu)
    on, off = (statistics.median(results[flag][0]) for flag in (True, False))
    cpu_on, cpu_off = (statistics.median(results[flag][1]) for flag in (True, False))
    print(f"model latency {latency * 1000:.0f} ms, {calls} calls x {turns} turns per variant:")
    print(f"  median turn: recorded {on * 1000:.3f} ms, unrecorded {off * 1000:.3f} ms "
          f"(+{(on - off) * 1000:.3f} ms)")
    print(f"  median CPU per call: recorded {cpu_on * 1000:.1f} ms, "
          f"unrecorded {cpu_off * 1000:.1f} ms", flush=True)
    return on / off, cpu_on, cpu_off


async def bench(dsn: str, calls: int, turns: int, latency: float) -> None:
    conn = await connect(dsn)
    await migrate(conn)
    await seed_demo(conn)
    route = await route_call(conn, caller=Caller(dialed_number=NEW_YORK_NUMBER), metadata={},
                             default_organization_slug=None)
    await conn.close()
    pool = await create_pool(dsn, min_size=2, max_size=4)
    with tempfile.TemporaryDirectory() as spool:
        recorder = Recorder(dsn, spool_dir=Path(spool), name="bench",
                            options=RecorderOptions(flush_interval=FLUSH_INTERVAL))
        await recorder.start()
        realistic, cpu_on, cpu_off = await compare(pool, recorder, route, calls=calls,
                                                   turns=turns, latency=latency)
        instant, _, _ = await compare(pool, recorder, route, calls=calls, turns=turns, latency=0.0)
        stats = recorder.stats()
        await recorder.close()
    await pool.close()
    print(f"rows written by the recorder: {stats.written}, dead-lettered: {stats.dead_lettered}")
    print(f"recorded_vs_unrecorded={realistic:.4f}")
    print(f"recorded_vs_unrecorded_instant_model={instant:.4f}")
    print(f"cpu_per_call_recorded_ms={cpu_on * 1000:.1f}")
    print(f"cpu_per_call_unrecorded_ms={cpu_off * 1000:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=16, help="calls per variant")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--model-latency", type=float, default=0.3, help="seconds")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(bench(args.database_url, args.calls, args.turns, args.model_latency))
        return
    with tempfile.TemporaryDirectory() as tmp:
        with EmbeddedPostgres(Path(tmp) / "data") as server:
            asyncio.run(bench(server.dsn, args.calls, args.turns, args.model_latency))


if __name__ == "__main__":
    main()
