"""Who is calling, and the connection their request runs on.

A request carries an API key as `Authorization: Bearer <key>`, or (the console) in an HttpOnly
cookie, in which case a change (POST, PATCH, DELETE) must also send the CSRF token the console got
at sign-in as the X-CSRF-Token header. The key is looked up, rate limited and checked for the
scope the operation needs; then the request's transaction switches to the `authenticated` role
with the key's service member as the JWT claims, so every query of the handler runs under RLS as
that member (db/apikeys.py, sql/0014_api_keys.sql).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiProblem
from db import apikeys
from db.apikeys import ApiKey

COOKIE = "fd_key"
CSRF_COOKIE = "fd_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# set_config(..., true) is SET LOCAL: both end with the request's transaction.
ACT_AS = """
select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)
"""

bearer = HTTPBearer(auto_error=False, description="An API key from `python -m db apikeys create`")


@dataclass(frozen=True)
class Caller:
    conn: asyncpg.Connection
    key: ApiKey

    @property
    def organization_id(self) -> uuid.UUID:
        return self.key.organization_id

    @property
    def actor(self) -> str:
        """Who audit_log rows name: the key's service member (sql/0017 lets it write only that)."""
        return f"member:{self.key.user_id}"


def csrf_token(secret: str) -> str:
    """The CSRF token of a console session: derived from its key, so the server keeps no state."""
    return hashlib.sha256(b"frontdesk-csrf:" + secret.encode()).hexdigest()


def _secret(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is not None:
        return credentials.credentials
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise ApiProblem(401, "send an API key as Authorization: Bearer <key>",
                         headers={"WWW-Authenticate": "Bearer"})
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token(secret)):
            raise ApiProblem(403, "missing or wrong CSRF token")
    return secret


# SET LOCAL ROLE NONE: back to the connection's own role (the tables' owner) until ACT_AS again.
AS_SERVICE = "select set_config('role', 'none', true)"


@asynccontextmanager
async def as_service(caller: Caller) -> AsyncIterator[asyncpg.Connection]:
    """The request's connection as the service itself, for work members may ask for but not do
    with their own rights (an analysis run's rows, an export's record): check what the caller
    may see under RLS first. Still the request's transaction; back under RLS afterwards (after an
    error the transaction is rolled back as a whole, so there is nothing to switch back)."""
    await caller.conn.execute(AS_SERVICE)
    yield caller.conn
    await caller.conn.execute(ACT_AS, claims(caller.key))


def claims(key: ApiKey) -> str:
    return json.dumps({"sub": str(key.user_id), "role": "authenticated",
                       "organization_id": str(key.organization_id), "scope": key.scope})


def requires(scope: str):
    """A dependency giving the handler a Caller whose connection runs as the key's member."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> AsyncIterator[Caller]:
        secret = _secret(request, credentials)
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            key = await apikeys.find_key(conn, secret=secret)
            if key is None:
                raise ApiProblem(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
            wait = request.app.state.limiter.take(key.id)
            if wait:
                raise ApiProblem(429, "too many requests for this key",
                                 headers={"Retry-After": str(math.ceil(wait))})
            if not key.allows(scope):
                raise ApiProblem(403, f"this operation needs a key with scope {scope}")
            await conn.execute(ACT_AS, claims(key))
            yield Caller(conn=conn, key=key)

    return Depends(caller, scope="function")


Reader = Annotated[Caller, requires("read")]
Writer = Annotated[Caller, requires("write")]
Admin = Annotated[Caller, requires("admin")]
