"""Retention and erasure at size.

    uv run python bench/retention.py [--calls 200000] [--month-messages 2000000]

Builds one organisation with `--calls` calls spread back from now, five minutes apart (a
transcript each with a confirmation code, and one message each), plus `--month-messages`
messages in the calls of one month three years ago (past every period), all by generate_series
in a few statements, each call recorded (created_at) when it started, so that its messages are in
its month's partition (sql/0016). Then times:

* erase_one_caller_ms: `erase` (db.privacy.erasure) of a caller with three calls among them,
  the sweep of every listed column for the number in any format and the name included, timed
  after the old month is dropped (in service, retention leaves no month past every period; its
  calls stay here, so the calls swept are 300,000). erase_with_old_month_ms: the same erasure
  (rolled back, a dry run) before the drop, the 2,000,000 turns of that month swept too;
* drop_month_s: retention dropping that old month of messages (db.privacy.partitions: the
  check that the month is past every period, the row count for the report, the DROP).

Uses DATABASE_URL when set, else an embedded Postgres in a temporary folder; creates its own
database either way and drops it at the end. Ends with `name=value` lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from db.migrate import migrate
from db.pool import connect
from db.privacy.erasure import erase
from db.privacy.partitions import drop_past_months
from db.privacy.patterns import person
from db.privacy.policy import DEFAULTS
from db.scratch import scratch_database

CALLER = "+12125550143"

LOAD_CALLS = """
insert into voice_calls (session_id, organization_id, caller_number, status, started_at, ended_at,
                         transcript, created_at)
select 'RM_' || i, $1, '+1646' || lpad((i % 9000000)::text, 7, '0'), 'completed', t, t,
       'Caller: I would like a cleaning on Monday. Agent: Booked, code ' || i, t
  from generate_series(1, $3) i, lateral (select $2::timestamptz - make_interval(mins => i * 5) t) s
"""
LOAD_MESSAGES = """
insert into voice_messages (call_id, sequence_number, item_id, role, content, created_at,
                            call_created_at)
select c.id, 0, 'item', 'user',
       case when c.session_id like '%3' then 'My code is ' || right(c.session_id, 6) || ', move it to 10:30'
            else 'I would like a cleaning on Monday please' end, c.started_at, c.created_at
  from voice_calls c
"""
OLD_MONTH_CALLS = """
insert into voice_calls (session_id, organization_id, status, started_at, ended_at, created_at)
select 'RM_old_' || i, $1, 'completed', t, t, t
  from generate_series(1, $3) i, lateral (select $2::timestamptz + make_interval(secs => i * 10) t) s
"""
# Straight into the month's partition (as a bulk load would): the statement trigger that sums
# tokens into each call is the parent table's, and these turns carry none.
OLD_MONTH_MESSAGES = """
insert into {partition} (call_id, sequence_number, item_id, role, content, created_at,
                            call_created_at)
select c.id, s, 'item' || s, 'assistant', 'Our office is open from nine to five on weekdays.',
       c.started_at, c.created_at
  from voice_calls c cross join generate_series(1, $1) s
 where c.session_id like 'RM\\_old\\_%'
"""
THE_CALLER = """
insert into voice_calls (session_id, organization_id, caller_number, status, started_at, transcript)
select 'RM_caller_' || i, $1, $2, 'completed', now() - make_interval(days => i),
       'Caller: my name is Jane Doe, call me back on six four six five five five zero one four three'
  from generate_series(1, 3) i
"""


async def timed(label: str, coro) -> float:
    start = time.perf_counter()
    await coro
    elapsed = time.perf_counter() - start
    print(f"built {label} in {elapsed:.1f} s", flush=True)
    return elapsed


async def load(conn: asyncpg.Connection, calls: int, month_messages: int) -> datetime:
    org = await conn.fetchval("insert into organizations (name, slug) values ('Bench', 'bench') "
                              "returning id")
    now = datetime.now(UTC)
    old_month = (now - timedelta(days=3 * 365)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    per_call = 20
    # The partitions of every month the calls span (as retention keeps them ahead), and the old one.
    await conn.execute("select create_month_partition('voice_messages', m::date) "
                       "from generate_series($1::timestamptz, $2::timestamptz, '1 month') m",
                       now - timedelta(minutes=5 * calls + 60 * 24 * 31), now)
    await conn.execute("select create_month_partition('voice_messages', $1)", old_month.date())
    await timed(f"{calls} calls", conn.execute(LOAD_CALLS, org, now, calls))
    # These turns carry no tokens: 0001's trigger would sum 0 into each call (and re-fold the
    # KPIs of 200,000 closed calls), minutes of a loaded machine for nothing.
    await conn.execute("alter table voice_messages disable trigger voice_messages_update_tokens_trigger")
    await timed(f"{calls} messages", conn.execute(LOAD_MESSAGES))
    await conn.execute("alter table voice_messages enable trigger voice_messages_update_tokens_trigger")
    await timed("the old month's calls", conn.execute(OLD_MONTH_CALLS, org, old_month,
                                                      month_messages // per_call))
    await timed(f"{month_messages} messages in one month", conn.execute(
        OLD_MONTH_MESSAGES.format(partition=f"voice_messages_p{old_month:%Y%m}"), per_call))
    await conn.execute(THE_CALLER, org, CALLER)
    # As autovacuum leaves a table in service: hint bits set, visibility map and statistics fresh.
    await conn.execute("vacuum analyze")
    return now


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        now = await load(conn, args.calls, args.month_messages)
        print(f"rows_voice_calls={await conn.fetchval('select count(*) from voice_calls')}")
        print(f"rows_voice_messages={await conn.fetchval('select count(*) from voice_messages')}")

        jane = person(CALLER, name="Jane Doe")
        start = time.perf_counter()
        await erase(conn, person=jane, actor="bench", dry_run=True)
        print(f"erase_with_old_month_ms={(time.perf_counter() - start) * 1000:.0f}")

        start = time.perf_counter()
        dropped = await drop_past_months(conn, kind="messages", now=now,
                                         default_days=DEFAULTS["messages"])
        print(f"drop_month_s={time.perf_counter() - start:.2f}")
        print(f"drop_month_rows={dropped}")

        start = time.perf_counter()
        report = await erase(conn, person=jane, actor="bench")
        print(f"erase_one_caller_ms={(time.perf_counter() - start) * 1000:.0f}")
        print(f"erase_calls={report.calls}")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--month-messages", type=int, default=2_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    async with scratch_database("bench-retention") as dsn:
        await run(dsn, args)
    print(f"wall_s={time.perf_counter() - started:.1f}")
    print(f"loadavg_1m={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
