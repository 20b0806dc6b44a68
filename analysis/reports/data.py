"""What a report shows, read once: the run, its business and location, its KPIs and calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg

from db.analysis import runs
from db.analysis.runs import Run
from db.desk import locations, organizations


@dataclass(frozen=True)
class ReportData:
    run: Run
    business: str
    location: str | None
    rows: list[dict[str, Any]]

    @property
    def kpis(self) -> dict[str, Any]:
        return self.run.kpis

    def days(self) -> list[tuple[date, int]]:
        """Calls per day over the whole period, days without calls included."""
        counts = self.kpis.get("calls_per_day", {})
        day, out = self.run.period_from, []
        while day <= self.run.period_to:
            out.append((day, int(counts.get(day.isoformat(), 0))))
            day += timedelta(days=1)
        return out


async def report_data(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> ReportData:
    run = await runs.get_run(conn, run_id=run_id)
    org = await organizations.get_organization(conn, id=run.organization_id)
    location = (await locations.get_location(conn, location_id=run.location_id)
                if run.location_id else None)
    return ReportData(run=run, business=org.name if org else "?",
                      location=location.name if location else None,
                      rows=await runs.run_call_rows(conn, run_id=run_id))
