"""`python -m agent demo`: one complete call in text mode, in-process, no LiveKit server.

It runs the real receptionist (tools, recording, recorder) against the embedded database with
the demo tenant, seeding it when missing: a scripted caller asks a question and books an
appointment. With OPENAI_API_KEY set the model is real; without, a scripted stand-in, and the
demo says so. At the end it prints the call as stored in Postgres, then has an analysis worker
(`python -m analysis work --once`, a process of its own) analyse it and prints the analysis."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import uuid
from datetime import date, datetime

from agent.call import Caller, FrontDesk
from agent.demo_script import caller_lines, next_weekday, receptionist_policy
from agent.opening import open_call
from agent.providers import Providers
from agent.receptionist import Receptionist, greeting
from agent.routing import Route
from agent.scripted import ScriptedLLM
from agent.session import build_session, greet, record_usage
from agent.settings import Settings
from agent.show import print_analysis, print_call
from db import ids
from db.demo.seed import NEW_YORK_NUMBER, seed_demo
from db.pool import connect, connection_options, create_pool
from db.recorder import Recorder, RecorderOptions
from db.startup import database

DEMO_CALLER = "+12125550143"
# Text mode: each caller line is a whole turn, so no end-of-turn model is needed.
TEXT_TURNS = "manual"


SCRIPTED_MODEL = "scripted-demo"


def _llm_model(settings: Settings) -> str:
    return settings.llm_model if settings.openai_api_key else SCRIPTED_MODEL


def _providers(settings: Settings, today: date) -> tuple[Providers, str]:
    models = {"llm_model": _llm_model(settings)}
    if settings.openai_api_key:
        from livekit.plugins import openai

        model = openai.LLM(model=settings.llm_model, api_key=settings.openai_api_key,
                           base_url=settings.openai_base_url or None)
        return Providers(llm=model, turn_detection=TEXT_TURNS, models=models), \
            f"the real model {settings.llm_model}"
    model = ScriptedLLM(receptionist_policy(today), model=SCRIPTED_MODEL)
    return Providers(llm=model, turn_detection=TEXT_TURNS, models=models), \
        "a SCRIPTED stand-in for the model (set OPENAI_API_KEY to use a real one)"


async def _seed(dsn: str, settings: Settings) -> None:
    conn = await connect(dsn, **connection_options(settings))
    try:
        tenant = await seed_demo(conn)
        if tenant.created_anything:
            print("Seeded the demo tenant (Bright Smile Dental).")
    finally:
        await conn.close()


async def run_demo(settings: Settings, dsn: str) -> str:
    """The demo call on the migrated database at `dsn`; returns its session id."""
    await _seed(dsn, settings)
    pool = await create_pool(dsn, min_size=1, max_size=4, **connection_options(settings))
    recorder = Recorder(dsn, spool_dir=settings.spool_dir, name="demo",
                        options=RecorderOptions(flush_interval=settings.recorder_flush_seconds,
                                                pooled=settings.pooled))
    await recorder.start()
    session_id = f"demo-{uuid.uuid4().hex[:12]}"
    try:
        caller = Caller(identity="demo-caller", number=DEMO_CALLER, dialed_number=NEW_YORK_NUMBER)
        desk, route = await open_call(pool, recorder, caller=caller, session_id=session_id,
                                      room_name="demo", models={"llm_model": _llm_model(settings)},
                                      call_metadata={"demo": True})
        today = datetime.now(desk.location_tz).date()
        providers, which = _providers(settings, today)
        print(f"Demo call {session_id} to {route.location.name}, answered by {which}.\n")
        await _converse(desk, providers, route, caller_lines(next_weekday(today)))
        await recorder.flush(settings.flush_deadline_seconds, session_id=session_id)
        await _analyse(dsn)
        async with pool.acquire() as conn:
            await print_call(conn, session_id=session_id)
            await print_analysis(conn, call_id=ids.call_id(session_id))
    finally:
        await recorder.close()
        await pool.close()
    return session_id


async def _analyse(dsn: str) -> None:
    """Drain the analysis queue (this call's job is in it) with a worker process, as in production:
    the agent never analyses calls itself."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "analysis", "work", "--once", env={**os.environ, "DATABASE_URL": dsn},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await worker.communicate()
    if worker.returncode != 0:
        print(f"The analysis worker failed:\n{output.decode(errors='replace')}")


async def _converse(desk: FrontDesk, providers: Providers, route: Route, lines: list[str]) -> None:
    session = build_session(desk, providers)
    session.on("conversation_item_added", _print_item)
    await session.start(agent=Receptionist(desk, business=route.organization.name))
    await greet(session, desk, greeting(desk, business=route.organization.name))
    for line in lines:
        if desk.closed:
            break
        await session.run(user_input=line)
    record_usage(session, desk)
    await session.aclose()


def _print_item(event) -> None:
    item = event.item
    if getattr(item, "type", "") == "message" and item.role in ("user", "assistant"):
        print(f"  {'Caller' if item.role == 'user' else 'Agent '}: {item.text_content}")


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m agent demo", description=__doc__).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    with database(settings.database_url, settings.embedded_pg_dir) as dsn:
        os.environ.setdefault("DATABASE_URL", dsn)
        asyncio.run(run_demo(settings, dsn))
    return 0
