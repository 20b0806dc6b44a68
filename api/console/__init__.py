"""The web console: one page of our own HTML, JS and CSS (no CDN, nothing fetched), talking to
/v1 with the API key kept in an HttpOnly, SameSite=Strict cookie; changes also send a CSRF token
(api/auth.py) that the page reads from a second, script-readable cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from api.auth import COOKIE, CSRF_COOKIE, csrf_token
from api.problems import ApiProblem
from db import apikeys

STATIC = Path(__file__).parent / "static"
# Our own files only; inline styles are used by the SVG charts' attributes, not by <style> tags.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SESSION_SECONDS = 12 * 3600


class SignIn(BaseModel):
    key: Annotated[str, Field(min_length=10, max_length=200)]


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP,
                                                             "Cache-Control": "no-store"})

    @app.post("/console/session", include_in_schema=False, status_code=204)
    async def sign_in(request: Request, body: SignIn) -> Response:
        async with request.app.state.pool.acquire() as conn:
            key = await apikeys.find_key(conn, secret=body.key)
        if key is None:
            raise ApiProblem(401, "unknown or revoked API key")
        secure = request.app.state.settings.cookie_secure
        response = Response(status_code=204)
        response.set_cookie(COOKIE, body.key, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                            secure=secure, path="/")
        response.set_cookie(CSRF_COOKIE, csrf_token(body.key), max_age=SESSION_SECONDS, httponly=False,
                            samesite="strict", secure=secure, path="/")
        return response

    @app.post("/console/signout", include_in_schema=False, status_code=204)
    async def sign_out() -> Response:
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response
