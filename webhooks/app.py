"""The HTTP side of the webhook service: an aiohttp application over a pool and a verifier.

Why aiohttp: it is already in our tree (livekit-agents and livekit-api are built on it), so the
service adds no dependency, and its `request.content` stream lets us stop reading a body at the
size limit instead of buffering whatever a client sends. One process, one event loop, no ASGI
layer: the handler is a few awaits between the socket and Postgres.

Each delivery is verified against the raw body, then stored and applied in one transaction
(webhooks/effects.py). Statuses: 401 unverified, 413 too large, 400 verified but not an event,
503 database unavailable (LiveKit retries), 500 anything else (logged), 200 applied, ignored or
a duplicate.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
from aiohttp import web
from livekit.protocol.webhook import WebhookEvent

from db import migrate
from db.errors import Conflict, DatabaseError, Unavailable, translated
from webhooks import effects
from webhooks.errors import BodyTooLarge, InvalidWebhookEvent, WebhookVerificationError
from webhooks.verify import WebhookVerifier

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/livekit/webhook"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
_READY_TIMEOUT_S = 2.0
_ATTEMPTS = 3
_DEADLOCK, _SERIALIZATION_FAILURE = "40P01", "40001"


def create_app(
    *, pool: asyncpg.Pool, verifier: WebhookVerifier, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> web.Application:
    """The application; the caller owns `pool` and closes it after the app has shut down."""
    handlers = _Handlers(pool, verifier, max_body_bytes)
    app = web.Application(client_max_size=max_body_bytes)
    # Only POST is routed here: aiohttp answers any other method with 405 and an Allow header.
    app.router.add_post(WEBHOOK_PATH, handlers.webhook)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    return app


class _Handlers:
    def __init__(self, pool: asyncpg.Pool, verifier: WebhookVerifier, max_body_bytes: int) -> None:
        self._pool = pool
        self._verifier = verifier
        self._max_body_bytes = max_body_bytes

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            body = await _read_body(request, self._max_body_bytes)
            event = self._verifier.verify(body, request.headers.get("Authorization"))
            effects.validate(event)
        except BodyTooLarge:
            log.warning("rejected webhook from %s: body over %s bytes", request.remote,
                        self._max_body_bytes)
            response = _error(413, f"body over {self._max_body_bytes} bytes")
            # Close rather than drain the rest of a body we will not read.
            response.force_close()
            return response
        except WebhookVerificationError as exc:
            log.warning("rejected webhook from %s: %s", request.remote, exc.reason)
            return _error(401, exc.reason)
        except InvalidWebhookEvent as exc:
            log.warning("rejected verified webhook from %s: %s", request.remote, exc)
            return _error(400, str(exc))

        try:
            result = await self._store(event, json.loads(body))
        except Unavailable as exc:
            log.warning("webhook %s (%s) not stored, database unavailable: %s",
                        event.id, event.event, exc)
            return _error(503, "database unavailable")
        except DatabaseError:
            log.exception("webhook %s (%s) failed", event.id, event.event)
            return _error(500, "could not record the event")
        log.debug("webhook %s %s: %s", event.id, event.event, result or "duplicate")
        return web.json_response({"status": result or "duplicate"})

    async def _store(self, event: WebhookEvent, payload: Any) -> str | None:
        """Store and apply the event in one transaction, retried when it lost a race with a
        concurrent writer of the same call (the whole transaction rolled back, so a retry is
        safe): two first events of one room both inserting its call, or a deadlock."""
        attempt = 1
        while True:
            try:
                with translated():
                    async with self._pool.acquire() as conn, conn.transaction():
                        return await effects.record(conn, event, payload=payload)
            except DatabaseError as exc:
                if attempt == _ATTEMPTS or not _lost_a_race(exc):
                    raise
                log.info("webhook %s (%s) lost a race, retrying: %s", event.id, event.event, exc)
                attempt += 1

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when the database answers and every migration in sql/ is applied."""
        try:
            async with self._pool.acquire(timeout=_READY_TIMEOUT_S) as conn:
                pending = await migrate.pending(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return web.json_response({"ready": False, "reason": f"database unreachable: {exc}"},
                                     status=503)
        except migrate.MigrationError as exc:
            return web.json_response({"ready": False, "reason": str(exc)}, status=503)
        if pending:
            return web.json_response({"ready": False, "pending_migrations": pending}, status=503)
        return web.json_response({"ready": True})


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, or BodyTooLarge as soon as it is known to exceed `limit`: from Content-Length
    before reading anything, or while streaming a chunked body."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _lost_a_race(exc: DatabaseError) -> bool:
    # Conflict: a unique key taken by a concurrent insert that ON CONFLICT did not arbitrate
    # (voice_calls' primary key when two transactions create the same call).
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return isinstance(exc, Conflict) or sqlstate in (_DEADLOCK, _SERIALIZATION_FAILURE)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
