"""A recording process for the kill -9 test: `python -m tests.recorder_producer DSN SPOOL_DIR CALLS
TURNS`. It records CALLS calls of TURNS messages and events each, flushes (the database is down,
so that spools them), prints `SPOOLED <rows>`, then keeps recording more turns into the spool
until it is killed."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from db import ids
from db.calls.events import Event
from db.calls.messages import Message
from db.recorder import Recorder, RecorderOptions


def record_turn(rec: Recorder, sid: str, n: int) -> None:
    call = ids.call_id(sid)
    now = datetime.now(UTC)
    rec.message(Message(call_id=call, sequence_number=n, item_id=f"item_{n}", role="user",
                        content=f"turn {n}", started_at=now))
    rec.event(Event(id=ids.event_id(call, f"e{n}"), call_id=call, event_type="tool_call",
                    payload={"n": n}, occurred_at=now))


async def main(dsn: str, spool_dir: Path, n_calls: int, n_turns: int) -> None:
    rec = Recorder(dsn, spool_dir=spool_dir, options=RecorderOptions(
        retry_interval=0.05, retry_max_interval=0.2, spool_interval=0.01))
    await rec.start()
    sids = [f"RM_killed_{i}" for i in range(n_calls)]
    for sid in sids:
        rec.start_call(session_id=sid, room_name="front-desk")
    for n in range(n_turns):
        for sid in sids:
            record_turn(rec, sid, n)
    await rec.flush(2)
    print(f"SPOOLED {rec.stats().spooled}", flush=True)
    n = n_turns
    while True:  # more rows, moved to the spool by the writer, until kill -9
        for sid in sids:
            record_turn(rec, sid, n)
        n += 1
        await asyncio.sleep(0.001)


if __name__ == "__main__":
    dsn, spool_dir, calls, turns = sys.argv[1:5]
    asyncio.run(main(dsn, Path(spool_dir), int(calls), int(turns)))
