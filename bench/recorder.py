"""The write-behind recorder against raw COPY, in one run, on one database.

    uv run python bench/recorder.py [--calls 200] [--turns 30] [--rounds 3]

1. 200 concurrent calls as asyncio tasks, each with 30 turns (a caller line, an answer) plus
   events, a row every --row-interval seconds on average (much faster than people talk, to keep
   the run short); every record call is timed on the caller's side; at the end every row is
   checked to be in Postgres. Prints wall time and peak RSS.
2. Throughput: the same kind of rows (calls, messages, events) written by raw
   `copy_records_to_table` (one COPY per table in one transaction) and through the recorder
   (record everything, then flush), alternated `--rounds` times; medians compared.
3. How messages and events are batched: COPY straight into the tables (the recorder, for fresh
   rows), COPY into a staging table + insert ... select ... on conflict (the recorder, for rows
   that may be stored already), and executemany of the repositories' INSERTs; same rows,
   transactions of 500 rows.

Uses DATABASE_URL when set, else an embedded Postgres in a temporary folder; creates its own
database either way. Ends with `name=value` lines."""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import os
import random
import resource
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from db import ids
from db.calls.events import COLUMNS as EVENT_COLUMNS
from db.calls.events import Event, append_events
from db.calls.messages import COLUMNS as MESSAGE_COLUMNS
from db.calls.messages import Message, append_messages
from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from db.pool import connect
from db.recorder import Recorder, RecorderOptions
from db.recorder.batches import copy_events, copy_messages, merge_events, merge_messages
from db.recorder.connections import init_connection

LINE = "I'd like to move my cleaning to next Tuesday afternoon if there is anything open then."


def turn_rows(call: uuid.UUID, turn: int) -> list[Message | Event]:
    """One turn: the caller's line, an event or two, the answer (as the agent records them)."""
    now = datetime.now(UTC)
    rows: list[Message | Event] = [
        Message(call_id=call, sequence_number=2 * turn, item_id=f"u{turn}", role="user", content=LINE,
                transcript_confidence=0.93, started_at=now, ended_at=now, transcription_delay_ms=180.0,
                end_of_turn_delay_ms=420.0),
        Event(id=ids.event_id(call, f"usage{turn}"), call_id=call, event_type="usage", turn_index=turn,
              payload={"llm_prompt_tokens": 812, "llm_completion_tokens": 41, "tts_characters": 96}),
    ]
    if turn % 3 == 2:
        rows.append(Event(id=ids.event_id(call, f"tool{turn}"), call_id=call, event_type="tool_call",
                          turn_index=turn, payload={"name": "find_slots", "arguments": {"day": "tue"}}))
    rows.append(Message(call_id=call, sequence_number=2 * turn + 1, item_id=f"a{turn}", role="assistant",
                        content=LINE, started_at=now, ended_at=now, llm_ttft_ms=310.0, tts_ttfb_ms=140.0,
                        e2e_latency_ms=920.0, prompt_tokens=812, completion_tokens=41, tokens_used=853,
                        model_used="gpt-4o-mini"))
    return rows


def record(rec: Recorder, row: Message | Event) -> None:
    (rec.message if isinstance(row, Message) else rec.event)(row)


# -- 1. concurrent calls -------------------------------------------------------------------------

async def one_call(rec: Recorder, sid: str, turns: int, pace: float, costs: list[int]) -> bool:
    clock = time.perf_counter_ns

    def timed(fn, *args, **kwargs):
        t0 = clock()
        result = fn(*args, **kwargs)
        costs.append(clock() - t0)
        return result

    call = timed(rec.start_call, session_id=sid, room_name="front-desk", caller_number="+12125550111")
    timed(rec.participant, session_id=sid, participant_sid=f"PA_c_{sid}", identity="caller", kind="sip",
          joined_at=datetime.now(UTC))
    timed(rec.participant, session_id=sid, participant_sid=f"PA_a_{sid}", identity="agent",
          participant_type="agent", kind="agent", joined_at=datetime.now(UTC))
    timed(rec.mark_connected, session_id=sid, connected_at=datetime.now(UTC))
    for turn in range(turns):
        rows = turn_rows(call, turn)
        for row in rows:
            timed(record, rec, row)
            await asyncio.sleep(random.uniform(0.0, 2 * pace))  # speech, model and network time
    timed(rec.update_call, session_id=sid, llm_model="gpt-4o-mini", stt_model="nova-3")
    timed(rec.finish_call, session_id=sid, status="completed", ended_at=datetime.now(UTC), outcome="booked")
    return await rec.flush(30, session_id=sid)


async def concurrent_calls(dsn: str, spool_dir: Path, n_calls: int, turns: int,
                           pace: float) -> dict[str, float]:
    rec = Recorder(dsn, spool_dir=spool_dir, options=RecorderOptions(log_interval=3600))
    await rec.start()
    costs: list[int] = []
    sids = [f"RM_conc_{i}" for i in range(n_calls)]
    t0 = time.perf_counter()
    flushed = await asyncio.gather(*(one_call(rec, sid, turns, pace, costs) for sid in sids))
    wall = time.perf_counter() - t0
    stats = rec.stats()
    await rec.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    conn = await connect(dsn)
    try:
        expected = [turn_rows(ids.call_id(sid), t) for sid in sids for t in range(turns)]
        want_messages = sum(isinstance(r, Message) for rows in expected for r in rows)
        want_events = sum(isinstance(r, Event) for rows in expected for r in rows)
        got = await conn.fetchrow("""
            select (select count(*) from voice_calls
                     where session_id like 'RM_conc_%' and status = 'completed') as calls,
                   (select count(*) from call_participants) as participants,
                   (select count(*) from voice_messages m join voice_calls c on c.id = m.call_id
                     where c.session_id like 'RM_conc_%') as messages,
                   (select count(*) from call_events e join voice_calls c on c.id = e.call_id
                     where c.session_id like 'RM_conc_%') as events""")
    finally:
        await conn.close()
    verified = (all(flushed) and got["calls"] == n_calls and got["participants"] == 2 * n_calls
                and got["messages"] == want_messages and got["events"] == want_events)
    costs.sort()
    print(f"concurrent: {n_calls} calls x {turns} turns in {wall:.2f}s, "
          f"{got['messages']} messages + {got['events']} events, all present: {verified}, "
          f"dead-lettered {stats.dead_lettered}, spooled {stats.spooled}, peak RSS {rss_mb:.0f} MB")
    print(f"record call cost over {len(costs)} calls: p50 {costs[len(costs) // 2] / 1000:.2f} us, "
          f"p99 {costs[int(len(costs) * 0.99)] / 1000:.2f} us, max {costs[-1] / 1000:.0f} us")
    if not verified:
        raise SystemExit(f"rows missing after the concurrent run: {dict(got)}")
    return {"wall": wall, "rss": rss_mb, "p50": costs[len(costs) // 2] / 1000,
            "p99": costs[int(len(costs) * 0.99)] / 1000}


# -- 2. throughput ------------------------------------------------------------------------------

def workload(tag: str, n_calls: int, turns: int) -> tuple[list[str], list[Message | Event]]:
    sids = [f"RM_{tag}_{i}" for i in range(n_calls)]
    # Turn-major: the calls interleave, as concurrent calls do.
    rows = [r for t in range(turns) for sid in sids for r in turn_rows(ids.call_id(sid), t)]
    return sids, rows


_message_values = operator.attrgetter(*MESSAGE_COLUMNS)
_event_values = operator.attrgetter(*EVENT_COLUMNS)


def _with_json(values: tuple, index: int) -> list:
    out = list(values)
    out[index] = json.dumps(out[index])
    return out


async def raw_copy(raw: asyncpg.Connection, sids: list[str], rows: list[Message | Event],
                   batch: int | None = None) -> float:
    """One COPY per table in one transaction (batch=None), or one transaction per `batch` rows."""
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    meta, payload = MESSAGE_COLUMNS.index("metadata"), EVENT_COLUMNS.index("payload")
    async with raw.transaction():
        await raw.copy_records_to_table(
            "voice_calls", columns=("id", "session_id", "started_at", "created_at"),
            records=[(ids.call_id(s), s, now, now) for s in sids])
    step = batch or len(rows)
    for i in range(0, len(rows), step):
        chunk = rows[i:i + step]
        async with raw.transaction():
            # call_created_at: the partition key (sql/0016), here known without a lookup.
            await raw.copy_records_to_table(
                "voice_messages", columns=(*MESSAGE_COLUMNS, "call_created_at"), records=[
                    (*_with_json(_message_values(r), meta), now)
                    for r in chunk if isinstance(r, Message)])
            await raw.copy_records_to_table(
                "call_events", columns=(*EVENT_COLUMNS, "call_created_at"), records=[
                    (*_with_json(_event_values(r), payload), now)
                    for r in chunk if isinstance(r, Event)])
    return (len(sids) + len(rows)) / (time.perf_counter() - t0)


async def through_recorder(dsn: str, spool_dir: Path, sids: list[str], rows: list[Message | Event],
                           max_queue: int) -> float:
    rec = Recorder(dsn, spool_dir=spool_dir,
                   options=RecorderOptions(max_queue=max_queue, log_interval=3600))
    await rec.start()
    t0 = time.perf_counter()
    for sid in sids:
        rec.start_call(session_id=sid)
    for i, row in enumerate(rows):
        record(rec, row)
        if i % 1000 == 0:
            await asyncio.sleep(0)
    if not await rec.flush(120):
        raise SystemExit("the recorder did not write everything within 120 s")
    rate = (len(sids) + len(rows)) / (time.perf_counter() - t0)
    await rec.close()
    return rate


async def throughput(dsn: str, spool_dir: Path, n_calls: int, turns: int, rounds: int) -> float:
    raw = await asyncpg.connect(dsn)  # no jsonb codec of ours: binary COPY takes jsonb as text
    copy_rates, batched_rates, rec_rates, spill_rates = [], [], [], []
    try:
        for n in range(rounds):
            copy_rates.append(await raw_copy(raw, *workload(f"copy{n}", n_calls, turns)))
            batched_rates.append(await raw_copy(raw, *workload(f"batched{n}", n_calls, turns), batch=500))
            sids, rows = workload(f"rec{n}", n_calls, turns)
            rec_rates.append(await through_recorder(dsn, spool_dir, sids, rows, len(rows) + len(sids)))
            sids, rows = workload(f"spill{n}", n_calls, turns)
            spill_rates.append(await through_recorder(dsn, spool_dir, sids, rows, 1_000))
            print(f"round {n + 1}: raw COPY {copy_rates[-1]:.0f} rows/s, raw COPY in transactions of 500 "
                  f"rows {batched_rates[-1]:.0f}, recorder {rec_rates[-1]:.0f}, recorder with "
                  f"max_queue=1000 (mostly through the spool) {spill_rates[-1]:.0f}")
    finally:
        await raw.close()
    copy, batched, rec, spill = (statistics.median(x) for x in (copy_rates, batched_rates, rec_rates,
                                                                 spill_rates))
    print(f"throughput medians over {len(rows) + len(sids)} rows (rows/s): raw COPY {copy:.0f}, raw COPY "
          f"in transactions of 500 rows {batched:.0f} ({batched / copy:.2f}), recorder {rec:.0f} "
          f"({rec / copy:.2f}), recorder through the spool {spill:.0f} ({spill / copy:.2f})")
    return rec / copy


# -- 3. COPY against executemany ---------------------------------------------------------------

WAYS = ("executemany", "merge", "copy")


async def batching(dsn: str, n_calls: int, turns: int) -> dict[str, float]:
    """Messages and events in transactions of 500 rows: executemany of the repositories' INSERTs,
    the recorder's merge (COPY into staging, insert ... select ... on conflict) and its COPY of
    fresh rows. Best of two rounds each, in rows/s."""
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)  # the recorder's codecs: binary jsonb, which COPY needs
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        for n in range(2):
            for way in WAYS:
                sids, rows = workload(f"ways_{way}{n}", n_calls, turns)
                for sid in sids:
                    await conn.execute("insert into voice_calls (id, session_id) values ($1, $2)",
                                       ids.call_id(sid), sid)
                t0 = time.perf_counter()
                for i in range(0, len(rows), 500):
                    chunk = rows[i:i + 500]
                    messages = [r for r in chunk if isinstance(r, Message)]
                    events = [r for r in chunk if isinstance(r, Event)]
                    async with conn.transaction():
                        if way == "copy":
                            await copy_messages(conn, messages)
                            await copy_events(conn, events)
                        elif way == "merge":
                            await merge_messages(conn, messages)
                            await merge_events(conn, events)
                        else:
                            await append_messages(conn, messages=messages)
                            await append_events(conn, events=events)
                rates[way].append(len(rows) / (time.perf_counter() - t0))
    finally:
        await conn.close()
    best = {way: max(r) for way, r in rates.items()}
    print("messages+events in transactions of 500 rows (rows/s): "
          + ", ".join(f"{way} {rate:.0f}" for way, rate in best.items()))
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--row-interval", type=float, default=0.02,
                        help="mean seconds between two rows of one call in the concurrent run (people "
                             "take seconds per turn; the default is ~40x faster, to keep the run short)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp:
        server = None
        admin_dsn = os.environ.get("DATABASE_URL")
        if not admin_dsn:
            server = EmbeddedPostgres(Path(tmp) / "pg").start()
            admin_dsn = server.admin_dsn
        name = f"bench_recorder_{os.getpid()}"
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f"create database {name}")
        dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        try:
            conn = await connect(dsn)
            await migrate(conn)
            await conn.close()
            concurrent = await concurrent_calls(dsn, Path(tmp) / "spool", args.calls, args.turns,
                                                args.row_interval)
            ratio = await throughput(dsn, Path(tmp) / "spool", args.calls, args.turns, args.rounds)
            ways = await batching(dsn, 50, args.turns)
        finally:
            await admin.execute(f"drop database if exists {name} with (force)")
            await admin.close()
            if server is not None:
                server.stop()
    print(f"recorder_vs_copy={ratio:.2f}")
    print(f"record_call_p50_us={concurrent['p50']:.2f}")
    print(f"record_call_p99_us={concurrent['p99']:.2f}")
    print(f"concurrent_calls={args.calls}")
    print(f"concurrent_calls_wall_s={concurrent['wall']:.2f}")
    print(f"concurrent_calls_peak_rss_mb={concurrent['rss']:.0f}")
    print(f"copy_vs_executemany={ways['copy'] / ways['executemany']:.2f}")
    print(f"merge_vs_executemany={ways['merge'] / ways['executemany']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
