"""Errors as RFC 9457 problem details (application/problem+json), from every layer: our
DatabaseError kinds, DomainError, FastAPI's validation and HTTP errors, and anything unexpected."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from db.errors import Conflict, DatabaseError, DomainError, InvalidInput, NotFound, Unavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def _doc(status: HTTPStatus) -> dict:
    return {"model": Problem, "description": status.phrase, "content": {MEDIA_TYPE: {}}}


# Documented on every /v1 operation, so clients (and schemathesis) know the shape of each error.
PROBLEM_RESPONSES = {s.value: _doc(s) for s in (
    HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT,
    HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE)}


class ApiProblem(Exception):
    """Raise from a handler to answer with a problem: status, detail and extra headers."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem(request: Request, status: int, detail: str | None, headers: dict | None = None) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=request.url.path)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=MEDIA_TYPE)


def _status_of(exc: DatabaseError | DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, (InvalidInput, DomainError)):
        return 422
    if isinstance(exc, Unavailable):
        return 503
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem):
        return problem(request, exc.status, exc.detail, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return problem(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return problem(request, 422, details)

    @app.exception_handler(DatabaseError)
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DatabaseError | DomainError):
        status = _status_of(exc)
        if status >= 500:
            log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
        return problem(request, status, str(exc) if status < 500 else "the database failed to answer")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(request, 500, "an unexpected error; it has been logged")
