"""The run as CSV: one row per call, what a spreadsheet wants (no caller numbers)."""

from __future__ import annotations

import csv
import io
import json

from analysis.reports.data import ReportData

COLUMNS = ("session_id", "started_at", "location", "call_status", "outcome", "duration_seconds",
           "status", "version", "analyser", "model_used", "intent", "journey_stage", "sentiment",
           "success", "success_reason", "agent_quality", "confidence", "summary", "follow_ups",
           "extraction")


def _cell(name: str, value: object) -> object:
    if value is None:
        return ""
    if name == "follow_ups":
        return "; ".join(value)  # type: ignore[arg-type]
    if name == "extraction":
        return json.dumps(value, sort_keys=True) if value else ""
    if name == "started_at":
        return value.isoformat()  # type: ignore[attr-defined]
    return value


def render_csv(data: ReportData) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in data.rows:
        writer.writerow([_cell(name, row.get(name)) for name in COLUMNS])
    return out.getvalue().encode()
