"""Erasure (python -m db erase): after a call like the demo's, analysed (its outbound events,
a manager's run and its report, an analysis quoting the caller), the caller's number in any
format (words included) and name are in no text or jsonb column of any table; the slot of the
appointment stays, without the person; the report file is gone; the analyses' categories and
the KPIs stay; an audit row says how many rows changed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.call import Caller
from agent.scripted import Step
from analysis.exporting import write_export
from analysis.pipeline import complete
from analysis.rules import RulesAnalyser
from analysis.runs import RunRequest, run_analysis
from analysis.worker import Worker, WorkerOptions
from db.analysis.analyses import Analysis
from db.calls import calls
from db.calls.webhook_events import NewWebhookEvent, record_webhook_events
from db.demo.seed import NEW_YORK_NUMBER
from db.privacy.erasure import PLACEHOLDER, SWEEPS, erase
from db.privacy.patterns import person
from db.privacy.redaction import DIGIT_WORDS
from tests.clock import local, next_open_weekday, today
from tests.harness import CALLER_NUMBER, open_text_call
from tests.test_kpis import keyed

pytestmark = pytest.mark.db

NATIONAL = CALLER_NUMBER[2:]  # +1 212 555 0188 -> 2125550188
NAME = "Jane Doe"
SPOKEN = "two one two five five five zero one double eight"
COLUMNS = """
select c.table_name, c.column_name
  from information_schema.columns c
  join information_schema.tables t using (table_schema, table_name)
 where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
   and c.data_type in ('text', 'character varying', 'jsonb', 'json', 'ARRAY')
"""


CATEGORIES = """
select call_id, version, analyser, intent, sentiment, success, agent_quality, quality_score
  from call_analyses order by call_id
"""


def _digits(text: str) -> str:
    """Every digit in `text`, words for digits included ("double eight" is 88)."""
    words = re.sub(r"\b(double|triple)\s+(\w+)",
                   lambda m: " ".join([m.group(2)] * (2 if m.group(1) == "double" else 3)),
                   text.lower())
    words = re.sub(r"\b(" + "|".join(DIGIT_WORDS) + r")\b", lambda m: DIGIT_WORDS[m.group(1)], words)
    return re.sub(r"\D", "", words)


async def traces(conn) -> list[str]:
    """`table.column` of every value that still holds the number (any format) or the name."""
    found = []
    for table, column in await conn.fetch(COLUMNS):
        values = await conn.fetch(f'select "{column}"::text as v from "{table}" where "{column}" is not null')
        for row in values:
            text = row["v"]
            if NATIONAL in _digits(text) or re.search(r"jane\W+doe", text, re.IGNORECASE):
                found.append(f"{table}.{column}")
    return sorted(set(found))


async def demo_like_call(pool, recorder, tenant) -> tuple[str, str]:
    """A phone call that books under the caller's number and name, says both in every form,
    with the SIP participant and LiveKit's webhooks stored; then a second caller's call that
    mentions the first one's number. Returns both session ids."""
    call = await open_text_call(pool, recorder)
    session_id = call.desk.session_id
    recorder.participant(session_id=session_id, participant_sid="PA_caller",
                         identity=f"sip_{CALLER_NUMBER}", name=CALLER_NUMBER, kind="sip",
                         attributes={"sip.phoneNumber": CALLER_NUMBER})
    day = next_open_weekday()
    await call.say(f"Book a cleaning on {day} at ten for {NAME}, my number is {SPOKEN}",
                   Step(calls=[("book_appointment", {"service": "cleaning",
                                                     "start_time": local(day, "10:00"),
                                                     "customer_name": NAME})]),
                   Step(text=f"Booked for {NAME}; we will call (212) 555-0188 if anything changes."))
    await call.hang_up(recorder)
    async with pool.acquire() as conn:
        await record_webhook_events(conn, events=[NewWebhookEvent(
            event_id="EV_joined", event="participant_joined", room_sid=session_id,
            room_name=f"call-_{CALLER_NUMBER}_x", created_at=datetime.now(UTC), outcome="ignored",
            body=json.dumps({"participant": {"identity": f"sip_{CALLER_NUMBER}", "name": NAME}}))])
    sister = Caller(identity="other", number="+13105550111", dialed_number=NEW_YORK_NUMBER, is_sip=True)
    other = await open_text_call(pool, recorder, caller=sister, session_id="RM_other")
    await other.say(f"My sister {NAME} is on 212.555.0188, can you tell her?", Step(text="Sorry, no."))
    await other.hang_up(recorder)
    return session_id, other.desk.session_id


async def analysed_and_reported(pool, tmp_path, session_id: str, other: str) -> Path:
    """Both calls analysed by the offline analyser through the worker (each with its
    call.analyzed event), a manager's run over them with its CSV report, then a newer version of
    each analysis, as a model writes them, quoting the caller. Returns the report's path."""
    assert await Worker(pool, RulesAnalyser(), WorkerOptions(poll_seconds=0.05)).drain() == 2
    run = await run_analysis(pool, RulesAnalyser(), RunRequest(today() - timedelta(days=1),
                                                               today() + timedelta(days=1)),
                             batch_size=10, concurrency=2)
    async with pool.acquire() as conn:
        export = await write_export(conn, run_id=run.id, format="csv", out=tmp_path / "run.csv",
                                    keep_days=7)
        ids = [(await calls.get_call(conn, session_id=s)).id for s in (session_id, other)]
        await complete(conn, [
            Analysis(call_id=ids[0], status="completed", analyser="model", intent="book",
                     sentiment="positive", success=True, agent_quality=9,
                     summary=f"{NAME} booked a cleaning; call back on (212) 555-0188.",
                     extraction={"name": NAME, "callback": CALLER_NUMBER},
                     follow_ups=[f"Confirm with {NAME} on {SPOKEN}"],
                     raw_reply=f'{{"summary": "{NAME} booked, {CALLER_NUMBER}"}}'),
            Analysis(call_id=ids[1], status="completed", analyser="model", intent="other",
                     sentiment="neutral", summary=f"Asked about her sister {NAME} on 212.555.0188.")])
    return Path(export.path)


async def test_erase_leaves_the_number_and_the_name_in_no_column(pool, recorder, tenant, tmp_path):
    session_id, other = await demo_like_call(pool, recorder, tenant)
    report = await analysed_and_reported(pool, tmp_path, session_id, other)
    async with pool.acquire() as conn:
        before = await traces(conn)
        assert {"voice_messages.content", "voice_calls.transcript", "appointments.customer_phone",
                "appointments.customer_name", "call_participants.attributes",
                "webhook_events.payload", "call_events.payload", "outbound_events.payload",
                "call_analyses.summary", "call_analysis_versions.raw_reply"} <= set(before)
        analyzed = await conn.fetchval("select count(*) from outbound_events "
                                       "where event_type = 'call.analyzed'")
        assert analyzed == 2 * 3  # two calls: the worker's version, the run's, the model's
        slots = await conn.fetch("select starts_at, status from appointments order by starts_at")
        kpis = keyed(await conn.fetch("select * from call_kpis_daily"))
        categories = await conn.fetch(CATEGORIES)

        done = await erase(conn, person=person("212 555 0188", name=NAME), actor="test")

        assert await traces(conn) == []
        assert done.rows["analysis_exports"] == 1 and not report.exists()
        # The analyses keep what the KPIs read: categories, scores, versions; and so do the KPIs.
        assert await conn.fetch(CATEGORIES) == categories
        assert keyed(await conn.fetch("select * from call_kpis_daily")) == kpis
        assert done.calls == 1 and done.total > 0
        assert await conn.fetch("select starts_at, status from appointments order by starts_at") == slots
        kept = await conn.fetchrow("select status, total_tokens_used, caller_number, metadata "
                                   "from voice_calls where session_id = $1", session_id)
        assert kept["status"] == "completed" and kept["total_tokens_used"] > 0
        assert kept["caller_number"] is None and kept["metadata"]["erased"] is True
        emptied = await conn.fetchval("select count(*) from voice_messages m join voice_calls c on "
                                      "c.id = m.call_id where c.session_id = $1 and m.content = ''",
                                      session_id)
        assert emptied == 2
        mentioned = await conn.fetchval(
            "select m.content from voice_messages m join voice_calls c on c.id = m.call_id "
            "where c.session_id = $1 and m.role = 'user'", other)
        assert mentioned == "My sister [ERASED] is on [ERASED], can you tell her?"
        audit = await conn.fetchrow("select * from audit_log where action = 'erasure'")
        assert audit["row_count"] == done.total and audit["actor"] == "test"
        assert NATIONAL not in _digits(str(dict(audit)))


async def test_a_dry_run_counts_what_a_run_changes_and_changes_nothing(pool, recorder, tenant):
    await demo_like_call(pool, recorder, tenant)
    who = person(CALLER_NUMBER, name=NAME)
    async with pool.acquire() as conn:
        before = await traces(conn)
        preview = await erase(conn, person=who, actor="test", dry_run=True)
        assert await traces(conn) == before
        assert await conn.fetchval("select count(*) from audit_log") == 0
        done = await erase(conn, person=who, actor="test")
        assert (done.rows, done.calls) == (preview.rows, preview.calls)
        again = await erase(conn, person=who, actor="test")
        assert again.total == 0


def test_the_command_refuses_a_number_that_is_not_one(db_dsn, repo_root):
    result = subprocess.run([sys.executable, "-m", "db", "erase", "--phone", "12", "--yes"],
                            cwd=repo_root, capture_output=True, text=True, timeout=60,
                            env={"DATABASE_URL": db_dsn, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "not a phone number" in result.stderr


def test_the_command_erases_with_yes_and_prints_counts_not_the_number(db_dsn, repo_root):
    result = subprocess.run([sys.executable, "-m", "db", "erase", "--phone", CALLER_NUMBER, "--yes"],
                            cwd=repo_root, capture_output=True, text=True, timeout=60,
                            env={"DATABASE_URL": db_dsn, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "erased: 0 row(s) changed; audit_log id 1" in result.stdout
    assert NATIONAL not in _digits(result.stdout + result.stderr)


@pytest.mark.parametrize("table", ["voice_calls", "voice_messages", "outbound_events"])
async def test_the_sweep_of_a_big_table_is_answered_by_its_trigram_index(conn, table):
    """sql/0019 indexes erasure_text over the columns MENTIONS lists: if the two drift apart
    (a column added to one only), the sweep reads the whole table again, and this plan says so."""
    who = person(CALLER_NUMBER, name=NAME)
    sweep = dict(SWEEPS)[table]
    params = (list(who.patterns), PLACEHOLDER, who.national[-4:], who.digits,
              list(who.word_hints), who.words, list(who.name_hints), who.name)
    async with conn.transaction():
        await conn.execute("set local enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(f"explain {sweep}", *params))
    assert "Bitmap Index Scan" in plan and "Seq Scan" not in plan, plan


def test_every_word_hint_is_long_enough_for_a_trigram_index():
    """A hint under three letters ("o" for zero) would make the index read all of itself."""
    for number in ("+12125550188", "+12120000000", "+13105550111"):
        hints = person(number).word_hints
        assert hints and all(len(h.strip("%")) >= 3 for h in hints), hints
