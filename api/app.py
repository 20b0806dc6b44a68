"""The FastAPI application: /v1 routers, problem+json errors, the console at /, an access log
without query strings (they may hold a caller's number), CORS only for configured origins."""

from __future__ import annotations

import logging
import time

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api import console, problems
from api.ratelimit import RateLimiter
from api.routes import account, analysis_runs, calls, configs, knowledge, kpis, places
from api.settings import ApiSettings

access_log = logging.getLogger("api.access")

DESCRIPTION = """The front desk's admin API. Authenticate with an organisation's API key
(`python -m db apikeys create ORG_SLUG --scope read`) as `Authorization: Bearer <key>`.
Every query runs under the database's row level security as that key, so a key only ever sees
its own organisation. Errors are RFC 9457 problem details."""


def create_app(*, pool: asyncpg.Pool, settings: ApiSettings) -> FastAPI:
    # FastAPIOffline: /docs serves Swagger UI from the fastapi-offline wheel, not from a CDN.
    app = FastAPIOffline(title="Front desk admin API", version="1", description=DESCRIPTION,
                         openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.pool = pool
    app.state.settings = settings
    app.state.limiter = RateLimiter(per_minute=settings.rate_limit_per_minute,
                                    burst=settings.rate_limit_burst)
    v1 = APIRouter(prefix="/v1", responses=problems.PROBLEM_RESPONSES)
    for module in (calls, configs, knowledge, places, kpis, analysis_runs, account):
        v1.include_router(module.router)
    app.include_router(v1)
    console.install(app)
    problems.install(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["*"], allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def log_access(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        # The path only: query strings carry filters such as a caller's phone number.
        access_log.info("%s %s %s %.1fms", request.method, request.url.path, response.status_code,
                        (time.perf_counter() - started) * 1000)
        return response

    return app
