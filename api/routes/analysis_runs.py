"""/v1/analysis: a manager's analysis runs (issue 13) and their CSV or PDF reports.

A run is created in the request (pending, then processing, with its calls counted: the answer
is 202 with that row) and analysed in the background of this API process after the request
commits, as `python -m analysis run` would; poll `GET /v1/analysis/runs/{id}` until its status
is completed, partial or failed. A run whose API process stops before it ends stays processing.
The analyser is the one `python -m analysis` builds from the same settings (a model with
OPENAI_API_KEY or ANALYSIS_BASE_URL, else the offline rules).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from analysis import build
from analysis.exporting import write_export
from analysis.runs import RunRequest, finish_analysis, start_analysis
from analysis.settings import Settings as AnalysisSettings
from api.auth import Reader, Writer, as_service
from api.problems import PROBLEM_RESPONSES, ApiProblem
from db.analysis import listing, runs
from db.analysis.runs import Run
from db.desk import locations, organizations

router = APIRouter(prefix="/analysis", tags=["analysis"])

MAX_DAYS = 366
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
FINISHED = ("completed", "partial")
MEDIA_TYPES = {"csv": "text/csv", "pdf": "application/pdf"}


class NewRun(BaseModel):
    period_from: Day = Field(description="first day, in the location's (else the organisation's) time zone")
    period_to: Day = Field(description="last day, included")
    location_id: uuid.UUID | None = None
    config_version: Annotated[int | None, Field(ge=1, le=1_000_000)] = None


class NewExport(BaseModel):
    format: Literal["csv", "pdf"]


class ExportOut(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID
    format: str
    size_bytes: int | None
    created_at: datetime
    expires_at: datetime
    download_url: str


def _settings(request: Request) -> AnalysisSettings:
    if getattr(request.app.state, "analysis_settings", None) is None:
        settings = AnalysisSettings()
        request.app.state.analysis_settings = settings
        request.app.state.analyser = build.analyser(settings)
    return request.app.state.analysis_settings


def _export_out(export) -> ExportOut:
    return ExportOut(id=export.id, run_id=export.run_id, format=export.format, size_bytes=export.size_bytes,
                     created_at=export.created_at, expires_at=export.expires_at,
                     download_url=f"/v1/analysis/exports/{export.id}")


@router.post("/runs", response_model=Run, status_code=202,
             summary="Analyse a period's calls (in the background; poll the run for its status)")
async def create_run(caller: Writer, body: NewRun, request: Request, background: BackgroundTasks) -> Run:
    if body.period_from > body.period_to or (body.period_to - body.period_from).days >= MAX_DAYS:
        raise ApiProblem(422, f"a period runs from period_from to period_to, at most {MAX_DAYS} days")
    organization = await organizations.get_organization(caller.conn, id=caller.organization_id)
    location_slug = None
    if body.location_id is not None:  # under RLS: another organisation's location is a 404
        location_slug = (await locations.get_location(caller.conn, location_id=body.location_id)).slug
    settings, analyser = _settings(request), request.app.state.analyser
    wanted = RunRequest(period_from=body.period_from, period_to=body.period_to,
                        organization_slug=organization.slug, location_slug=location_slug,
                        config_version=body.config_version)
    async with as_service(caller) as conn:
        started = await start_analysis(conn, analyser, wanted)
    # Background tasks run after the request's transaction has committed (the run's rows exist).
    background.add_task(finish_analysis, request.app.state.pool, analyser, started,
                        batch_size=settings.analysis_batch_size, concurrency=settings.analysis_concurrency)
    return started.run


@router.get("/runs", response_model=list[Run], summary="The organisation's runs, newest first")
async def list_runs(caller: Reader,
                    status: Literal["pending", "processing", "completed", "failed", "partial"] | None = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[Run]:
    return await listing.list_runs(caller.conn, organization_id=caller.organization_id, status=status,
                                   limit=limit)


@router.get("/runs/{run_id}", response_model=Run, summary="One run: status, counts and its KPIs")
async def get_run(caller: Reader, run_id: uuid.UUID) -> Run:
    return await runs.get_run(caller.conn, run_id=run_id)  # RLS: another organisation's is a 404


@router.post("/runs/{run_id}/exports", response_model=ExportOut, status_code=201,
             summary="Write the run's report (csv or pdf); download it from download_url")
async def create_export(caller: Writer, run_id: uuid.UUID, body: NewExport, request: Request) -> ExportOut:
    run = await runs.get_run(caller.conn, run_id=run_id)
    if run.status not in FINISHED:
        raise ApiProblem(409, f"the run is {run.status}: a report needs a completed or partial run")
    settings: AnalysisSettings = _settings(request)
    out = request.app.state.settings.export_dir / f"{run_id}-{uuid.uuid4().hex[:12]}.{body.format}"
    async with as_service(caller) as conn:
        # write_export records the export and its audit_log row (issue 16) in one transaction,
        # naming the key's member.
        export = await write_export(conn, run_id=run_id, format=body.format, out=out,
                                    keep_days=settings.analysis_export_days, actor=caller.actor)
    return _export_out(export)


@router.get("/runs/{run_id}/exports", response_model=list[ExportOut], summary="The run's reports")
async def list_exports(caller: Reader, run_id: uuid.UUID) -> list[ExportOut]:
    await runs.get_run(caller.conn, run_id=run_id)
    return [_export_out(e) for e in await listing.exports_of_run(caller.conn, run_id=run_id)]


@router.get("/exports/{export_id}", response_class=FileResponse, summary="Download a report",
            responses={200: {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                         for t in MEDIA_TYPES.values()}},
                       410: PROBLEM_RESPONSES[404] | {"description": "Gone: expired or deleted"}})
async def download_export(caller: Reader, export_id: uuid.UUID) -> FileResponse:
    export = await listing.get_export(caller.conn, export_id=export_id)
    if export is None:
        raise ApiProblem(404, f"no export with id {export_id}")
    if export.expires_at <= datetime.now(export.expires_at.tzinfo):
        raise ApiProblem(410, "this export has expired")
    path = Path(export.path)
    if not await asyncio.to_thread(path.is_file):
        raise ApiProblem(410, "this export's file is gone")
    return FileResponse(path, media_type=MEDIA_TYPES[export.format],
                        filename=f"analysis-{export.run_id}.{export.format}")
