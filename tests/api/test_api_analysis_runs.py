"""Analysis runs through the API (issue 13): a write key starts a run over a period (202, then it
completes in the background), reads its KPIs and lists runs; exports a CSV and a PDF report,
each tracked in analysis_exports and audited as the key's member, and downloads them. Other
organisations see none of it."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import pytest

from db import apikeys, audit
from db.pool import connect
from tests.api.conftest import client

pytestmark = pytest.mark.db


def _period(**extra) -> dict:
    today = datetime.now(UTC).date()
    return {"period_from": str(today - timedelta(days=10)), "period_to": str(today + timedelta(days=1)),
            **extra}


def _finished(c, run_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = c.get(f"/v1/analysis/runs/{run_id}").json()
        if run["status"] not in ("pending", "processing"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s")


@pytest.fixture(scope="module")
def finished_run(api_server, world) -> dict:
    with client(api_server, world.keys["write"]) as c:
        answer = c.post("/v1/analysis/runs", json=_period())
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "processing" and answer.json()["calls_total"] == 8
        return _finished(c, answer.json()["id"])


def test_a_run_analyses_the_period_in_the_background(api_server, world, finished_run):
    assert finished_run["status"] == "completed"
    counts = ("calls_total", "calls_analysed", "calls_failed")
    assert [finished_run[name] for name in counts] == [8, 8, 0]
    assert finished_run["kpis"]["calls"] == 8 and finished_run["analyser"] == "rules"
    with client(api_server, world.keys["write"]) as c:
        located = c.post("/v1/analysis/runs",
                         json=_period(location_id=str(world.tenant.santa_monica_location_id)))
        assert located.status_code == 202 and located.json()["calls_total"] == 1
        assert _finished(c, located.json()["id"])["status"] == "completed"
        listed = [r["id"] for r in c.get("/v1/analysis/runs").json()]
        failed = [r["id"] for r in c.get("/v1/analysis/runs", params={"status": "failed"}).json()]
        backwards = c.post("/v1/analysis/runs", json={"period_from": "2026-02-01", "period_to": "2026-01-01"})
        too_long = c.post("/v1/analysis/runs", json={"period_from": "2024-01-01", "period_to": "2025-01-02"})
        foreign = c.post("/v1/analysis/runs", json=_period(location_id=str(world.other_call_id)))
    with client(api_server, world.keys["read"]) as c:
        read_only = c.post("/v1/analysis/runs", json=_period())
    with client(api_server, world.keys["other"]) as c:
        hidden = c.get(f"/v1/analysis/runs/{finished_run['id']}")
        others = c.get("/v1/analysis/runs").json()
    assert listed == [located.json()["id"], finished_run["id"]] and failed == []
    assert (backwards.status_code, too_long.status_code, foreign.status_code) == (422, 422, 404)
    assert read_only.status_code == 403
    assert hidden.status_code == 404 and others == []


async def test_exports_are_tracked_audited_and_downloaded(api_server, world, finished_run):
    run_id = finished_run["id"]
    with client(api_server, world.keys["write"]) as c:
        made = {fmt: c.post(f"/v1/analysis/runs/{run_id}/exports", json={"format": fmt})
                for fmt in ("csv", "pdf")}
        assert all(answer.status_code == 201 for answer in made.values()), [a.text for a in made.values()]
        csv_file = c.get(made["csv"].json()["download_url"])
        pdf_file = c.get(made["pdf"].json()["download_url"])
        listed = c.get(f"/v1/analysis/runs/{run_id}/exports").json()
        bad_format = c.post(f"/v1/analysis/runs/{run_id}/exports", json={"format": "xlsx"})
    with client(api_server, world.keys["other"]) as c:
        stolen = c.get(made["csv"].json()["download_url"])
        foreign_export = c.post(f"/v1/analysis/runs/{run_id}/exports", json={"format": "csv"})
    assert csv_file.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_file.text)))
    assert len(rows) == 8 and {row["analyser"] for row in rows} == {"rules"}
    assert pdf_file.headers["content-type"] == "application/pdf" and pdf_file.content.startswith(b"%PDF")
    assert sorted(e["id"] for e in listed) == sorted(a.json()["id"] for a in made.values())
    assert made["pdf"].json()["size_bytes"] == len(pdf_file.content)
    assert bad_format.status_code == 422
    assert stolen.status_code == 404 and foreign_export.status_code == 404
    conn = await connect(world.dsn)
    try:
        key = await apikeys.find_key(conn, secret=world.keys["write"])
        audited = await conn.fetch("""select subject, details ->> 'format' as format from audit_log
                                       where action = $1 and actor = $2""",
                                   audit.EXPORT, f"member:{key.user_id}")
        tracked = await conn.fetchval("select count(*) from analysis_exports where run_id = $1", run_id)
        await conn.execute("update analysis_exports set expires_at = now() - interval '1 minute'"
                           " where id = $1", made["pdf"].json()["id"])
    finally:
        await conn.close()
    with client(api_server, world.keys["write"]) as c:
        assert c.get(made["pdf"].json()["download_url"]).status_code == 410  # expired
        assert c.get(made["csv"].json()["download_url"]).status_code == 200
    assert sorted((r["subject"], r["format"]) for r in audited) == [
        (f"analysis_run:{run_id}", "csv"), (f"analysis_run:{run_id}", "pdf")]
    assert tracked == 2
