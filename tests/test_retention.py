"""Retention (python -m db retention): per organisation and kind, what is past its period leaves
(or, for the text of a call that is kept, is redacted); a dry run counts; a second run and a
concurrent run change nothing twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.analysis import runs
from db.errors import InvalidInput
from db.pool import connect
from db.privacy import policy
from db.privacy.retention import run_retention
from tests.test_kpis import keyed
from webhooks.retention import retention_schedule

pytestmark = pytest.mark.db

NOW = datetime.now(UTC)


async def old_call(conn, *, days: int, organization_id=None, status: str = "completed",
                   text: str = "call me at 212-555-0143") -> uuid.UUID:
    """A call `days` ago with two messages, an event, an analysis and a webhook of its room."""
    at = NOW - timedelta(days=days)
    session = f"RM_{uuid.uuid4().hex[:10]}"
    call = await conn.fetchval(
        "insert into voice_calls (session_id, organization_id, status, started_at, ended_at, "
        "transcript, session_report, recording_url) values ($1, $2, $3, $4, $4, $5, $6, $7) "
        "returning id", session, organization_id, status, at, f"Caller: {text}", {"report": text},
        "https://example.com/rec.ogg")
    for seq, role in enumerate(("user", "assistant")):
        await conn.execute(
            "insert into voice_messages (call_id, sequence_number, item_id, role, content, "
            "tokens_used, created_at) values ($1, $2, $3, $4, $5, 7, $6)",
            call, seq, f"item{seq}", role, text, at)
    await conn.execute("insert into call_events (id, call_id, event_type, payload, occurred_at, "
                       "created_at) values ($1, $2, 'tool_call', $3, $4, $4)",
                       uuid.uuid4(), call, {"said": text}, at)
    await conn.execute("insert into call_analyses (call_id, summary, created_at) values ($1, $2, $3)",
                       call, text, at)
    await conn.execute("insert into webhook_events (event_id, event, room_sid, payload, received_at) "
                       "values ($1, 'room_finished', $2, '{}', $3)", f"EV_{session}", session, at)
    return call


async def state(conn, call: uuid.UUID) -> dict | None:
    row = await conn.fetchrow(
        "select c.transcript, c.session_report, c.recording_url, c.total_tokens_used, "
        "(select array_agg(content order by sequence_number) from voice_messages where call_id = c.id) m, "
        "(select count(*) from call_events where call_id = c.id) events, "
        "(select count(*) from call_analyses where call_id = c.id) analyses, "
        "(select count(*) from webhook_events where room_sid = c.session_id) webhooks "
        "from voice_calls c where c.id = $1", call)
    return dict(row) if row else None


async def test_each_kind_leaves_after_its_period_and_a_second_run_does_nothing(conn, tenant):
    org = tenant.organization_id
    gone = await old_call(conn, days=800, organization_id=org)
    failed = await old_call(conn, days=100, organization_id=org, status="failed")
    year_old = await old_call(conn, days=400, organization_id=org)
    redacted = await old_call(conn, days=100, organization_id=org)
    fresh = await old_call(conn, days=10, organization_id=org)
    fresh_before = await state(conn, fresh)

    report = await run_retention(conn, now=NOW)

    assert await state(conn, gone) is None and await state(conn, failed) is None
    assert await state(conn, year_old) == {
        "transcript": "Caller: call me at [PHONE]", "session_report": None, "recording_url": None,
        "total_tokens_used": 14, "m": ["call me at [PHONE]"] * 2, "events": 0, "analyses": 1,
        "webhooks": 0}
    assert await state(conn, redacted) == {
        "transcript": "Caller: call me at [PHONE]", "session_report": None, "recording_url": None,
        "total_tokens_used": 14, "m": ["call me at [PHONE]"] * 2, "events": 1, "analyses": 1,
        "webhooks": 0}
    assert await state(conn, fresh) == fresh_before
    assert report.rows == {"failed_calls": 1, "calls": 1, "message_text": 2, "messages": 0,
                           "event_payloads": 1, "webhook_payloads": 4, "session_reports": 2,
                           "recordings": 2, "analyses": 0, "exports": 0, "spool_files": 0}
    again = await run_retention(conn, now=NOW)
    assert set(again.rows.values()) == {0}


async def test_a_dry_run_counts_per_kind_and_changes_nothing(conn, tenant):
    call = await old_call(conn, days=800, organization_id=tenant.organization_id)
    before = await state(conn, call)
    report = await run_retention(conn, now=NOW, dry_run=True)
    assert report.rows["calls"] == 1 and report.rows["event_payloads"] == 1
    assert await state(conn, call) == before


async def test_an_organisations_own_periods_override_the_defaults(conn, tenant):
    org = tenant.organization_id
    periods = await policy.set_policy(conn, organization_id=org, retention={"calls": 30},
                                      redact_pii=True)
    assert periods["calls"] == 30 and periods["messages"] == policy.DEFAULTS["messages"]
    assert await conn.fetchval("select redact_pii from organizations where id = $1", org)
    ours = await old_call(conn, days=40, organization_id=org)
    no_org = await old_call(conn, days=40)
    await run_retention(conn, now=NOW)
    assert await state(conn, ours) is None and await state(conn, no_org) is not None


@pytest.mark.parametrize("retention", [{"calls": 0}, {"call": 30}, {"calls": "30"}, {"calls": True}])
async def test_a_period_is_a_known_kind_in_whole_days(conn, tenant, retention):
    with pytest.raises(InvalidInput):
        await policy.set_policy(conn, organization_id=tenant.organization_id, retention=retention)


async def test_the_database_refuses_a_period_that_is_not_days(conn, tenant):
    with pytest.raises(Exception, match="organizations_retention_check"):
        await conn.execute("update organizations set retention = '{\"calls\": -1}' where id = $1",
                           tenant.organization_id)


async def test_concurrent_runs_share_the_work_without_doing_any_twice(db_dsn, conn, tenant):
    calls = [await old_call(conn, days=800, organization_id=tenant.organization_id) for _ in range(12)]
    others = [await connect(db_dsn) for _ in range(3)]
    try:
        reports = await asyncio.gather(*(run_retention(c, now=NOW, batch=2) for c in others))
    finally:
        for other in others:
            await other.close()
    assert sum(r.rows["calls"] for r in reports) == len(calls)
    assert await conn.fetchval("select count(*) from voice_calls") == 0


async def test_old_dead_letter_files_go_and_spools_stay(conn, tmp_path):
    old, new, spool = (tmp_path / "a-deadletter.jsonl", tmp_path / "b-deadletter.jsonl",
                       tmp_path / "a.spool")
    for path in (old, new, spool):
        path.write_text("{}\n")
    # Every time set here: under libfaketime the file system still stamps files with the real time.
    recent, long_ago = NOW.timestamp() - 86400, NOW.timestamp() - 40 * 86400
    os.utime(new, (recent, recent))
    os.utime(old, (long_ago, long_ago))
    os.utime(spool, (long_ago, long_ago))
    report = await run_retention(conn, now=NOW, spool_dir=tmp_path)
    assert report.rows["spool_files"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.spool", "b-deadletter.jsonl"]


async def test_the_webhook_service_schedule_runs_retention_until_cancelled(pool, tenant):
    async with pool.acquire() as conn:
        call = await old_call(conn, days=800, organization_id=tenant.organization_id)
    task = asyncio.create_task(retention_schedule(pool, interval_s=0.05, first_after_s=0))
    try:
        async with asyncio.timeout(10):
            while True:
                async with pool.acquire() as conn:
                    if await state(conn, call) is None:
                        break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert await retention_schedule(pool, interval_s=0) is None  # 0: off, returns at once


async def test_an_organisation_may_keep_turn_rows_shorter_than_its_calls(conn, tenant):
    await policy.set_policy(conn, organization_id=tenant.organization_id, retention={"messages": 300})
    call = await old_call(conn, days=400, organization_id=tenant.organization_id)
    report = await run_retention(conn, now=NOW)
    assert report.rows["messages"] == 2
    assert (await state(conn, call))["m"] is None


def test_the_command_reports_per_kind_in_a_dry_run(db_dsn, repo_root, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "db", "retention", "--dry-run", "--spool-dir", str(tmp_path)],
        cwd=repo_root, capture_output=True, text=True, timeout=60,
        env={"DATABASE_URL": db_dsn, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    counted = dict(line.split() for line in result.stdout.splitlines()[1:-1])
    assert counted == {kind: "0" for kind in policy.KINDS}
    assert "dry run: nothing changed" in result.stdout


async def analysed(conn, call: uuid.UUID, *ages_days: int) -> None:
    """Versions of the call's analysis written `ages_days` ago (oldest first); the last is current."""
    for version, days in enumerate(ages_days, start=1):
        at = NOW - timedelta(days=days)
        await conn.execute("insert into call_analysis_versions (call_id, version, status, summary, "
                           "raw_reply, created_at) values ($1, $2, 'completed', 'said 212-555-0143', "
                           "'{\"summary\": \"said 212-555-0143\"}', $3)", call, version, at)
        await conn.execute("update call_analyses set version = $2, created_at = $3, intent = 'book', "
                           "raw_reply = 'reply' where call_id = $1", call, version, at)


async def test_old_analyses_with_every_version_and_old_or_expired_exports_go(conn, tenant, tmp_path):
    org = tenant.organization_id
    await policy.set_policy(conn, organization_id=org, retention={"analyses": 60})
    old = await old_call(conn, days=100, organization_id=org)
    await analysed(conn, old, 95, 90)
    mixed = await old_call(conn, days=100, organization_id=org)
    await analysed(conn, mixed, 95, 5)  # re-analysed lately: the current version stays
    fresh = await old_call(conn, days=10, organization_id=org)
    await analysed(conn, fresh, 10)
    run = await runs.create_run(conn, organization_id=org, location_id=None, config_version=None,
                                period_from=NOW.date(), period_to=NOW.date(), filters={},
                                analyser="rules")
    files = {}
    for name, created, expires in (("old", 40, -5), ("expired", 1, 1 / 24), ("kept", 1, -6)):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text("call,intent\n")
        await conn.execute(
            "insert into analysis_exports (run_id, format, path, created_at, expires_at) "
            "values ($1, 'csv', $2, $3, $4)", run.id, str(files[name]),
            NOW - timedelta(days=created), NOW - timedelta(days=expires))

    kpis = keyed(await conn.fetch("select * from call_kpis_daily"))
    report = await run_retention(conn, now=NOW)

    versions = "select call_id, version from call_analysis_versions order by call_id, version"
    assert sorted(map(tuple, await conn.fetch(versions))) == sorted([(mixed, 2), (fresh, 1)])
    current = "select call_id from call_analyses where raw_reply is not null"
    assert {r["call_id"] for r in await conn.fetch(current)} == {mixed, fresh}
    assert report.rows["analyses"] == 1 + 2 + 1  # old's current row and both versions, mixed's v1
    assert report.rows["exports"] == 2
    assert [p.name for p in files.values() if p.exists()] == ["kept.csv"]
    assert await conn.fetchval("select count(*) from analysis_exports") == 1
    # The calls themselves stay, and so do their KPIs.
    assert await state(conn, old) is not None
    assert keyed(await conn.fetch("select * from call_kpis_daily")) == kpis
    again = await run_retention(conn, now=NOW)
    assert again.rows["analyses"] == again.rows["exports"] == 0
