"""`python -m analysis` as a manager uses it: run a period, export the run as CSV and PDF (read
back with poppler's pdftotext and pdftoppm), clean up expired exports; and `work --once`."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from db import audit
from db.analysis import analyses, exports
from tests.analysis_helpers import make_call
from tests.test_analysis_runs import DAYS, at

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("pdftotext")),
    reason="needs poppler-utils (pdftoppm, pdftotext): .ci/run installs it")


def cli(repo_root: Path, dsn: str, *args: str) -> list[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "OPENAI_API_KEY": "", "ANALYSIS_BASE_URL": ""}
    done = subprocess.run([sys.executable, "-m", "analysis", *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.fixture
async def calls(pool, tenant):
    async with pool.acquire() as conn:
        for day in range(3):
            for hour in (9, 10, 15):
                await make_call(conn, organization_id=tenant.organization_id, started_at=at(day, hour),
                                location_id=tenant.midtown_location_id)


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def first_page_png(pdf: Path, prefix: Path) -> Path:
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(prefix)], check=True)
    return prefix.with_suffix(".png")


def brand_pixels(png: Path, *, top_mm: float, bottom_mm: float) -> int:
    """Pixels of the report's blue between two heights of the A4 page (the bars of a chart)."""
    image = Image.open(png).convert("RGB")
    scale = image.height / 297
    band = image.crop((0, int(top_mm * scale), image.width, int(bottom_mm * scale))).tobytes()
    return sum(1 for i in range(0, len(band), 3)
               if abs(band[i] - 13) < 30 and abs(band[i + 1] - 110) < 30 and abs(band[i + 2] - 153) < 30)


async def test_run_then_csv_and_pdf_exports_then_cleanup(repo_root, db_dsn, pool, calls, tenant,
                                                         tmp_path):
    lines = cli(repo_root, db_dsn, "run", "--from", DAYS[0].isoformat(), "--to", DAYS[2].isoformat())
    run_id = uuid.UUID(lines[-1])
    assert "run completed: 9 call(s)" in "\n".join(lines)

    cli(repo_root, db_dsn, "export", str(run_id), "--format", "csv", "--out", str(tmp_path / "r.csv"))
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 9 and {r["intent"] for r in rows} == {"book"}
    assert {r["analyser"] for r in rows} == {"rules"} and all(r["summary"] for r in rows)
    assert "caller_number" not in rows[0]

    pdf = tmp_path / "report.pdf"
    cli(repo_root, db_dsn, "export", str(run_id), "--format", "pdf", "--out", str(pdf))
    text = pdf_text(pdf)
    for expected in ("Bright Smile Dental", f"{DAYS[0]:%d %b %Y} to {DAYS[2]:%d %b %Y}",
                     "Calls per day", "Intent distribution", "Sentiment", "Response time (ms)",
                     "Calls by hour of day", "Key figures", "Booking conversion", "Containment"):
        assert expected in text, expected
    page = first_page_png(pdf, tmp_path / "page")
    # The calls-per-day chart (below the header and the tiles) has its bars drawn.
    assert brand_pixels(page, top_mm=75, bottom_mm=112) > 100

    async with pool.acquire() as conn:
        made = await exports.exports_of_run(conn, run_id=run_id)
        assert sorted(e.format for e in made) == ["csv", "pdf"]
        assert all(e.expires_at - e.created_at == timedelta(days=7) for e in made)
        # Each export is audited: who, which run, how many calls; no caller's data.
        audited = await audit.recent(conn, action=audit.EXPORT)
        assert sorted(a.details["export_id"] for a in audited) == sorted(str(e.id) for e in made)
        assert {(a.subject, a.row_count, a.organization_id) for a in audited} == {
            (f"analysis_run:{run_id}", 9, tenant.organization_id)}
        assert all(a.actor == audit.system_actor() for a in audited)
        await conn.execute("update analysis_exports set expires_at = now() - interval '1 minute' "
                           "where format = 'pdf'")
    assert cli(repo_root, db_dsn, "cleanup")[-1] == "deleted 1 expired export(s)"
    assert not pdf.exists() and (tmp_path / "r.csv").exists()
    async with pool.acquire() as conn:
        assert [e.format for e in await exports.exports_of_run(conn, run_id=run_id)] == ["csv"]


async def test_work_once_drains_the_queue_with_the_offline_analyser(repo_root, db_dsn, pool, calls):
    assert cli(repo_root, db_dsn, "work", "--once")[-1] == "analysed 9 job(s) with the rules analyser"
    async with pool.acquire() as conn:
        call_ids = [r["id"] for r in await conn.fetch("select id from voice_calls")]
        for call_id in call_ids:
            assert (await analyses.current(conn, call_id=call_id)).analyser == "rules"
