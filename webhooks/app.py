"""The HTTP side of the webhook service: an aiohttp application over a pool and a verifier.

Why aiohttp: it is already in our tree (livekit-agents and livekit-api are built on it), so the
service adds no dependency, and its `request.content` stream lets us stop reading a body at the
size limit instead of buffering whatever a client sends. One process, one event loop, no ASGI
layer: the handler is a few awaits between the socket and Postgres.

Each delivery is verified against the raw body, then stored and applied in a transaction that
it shares with the deliveries that arrived with it, and answered once that commits
(webhooks/commits.py, webhooks/effects.py). Statuses: 401 unverified (one answer whatever the
reason, which goes to the log: the answer must not tell a caller which API keys exist), 413 too
large, 408 a body not received within `body_timeout`, 400 verified but not an event, 200
applied, ignored, a duplicate, or journaled (the database is away: kept on disk and applied once
it is back, webhooks/journal.py), 503 database unavailable and no journal (or a full one:
LiveKit retries), 500 anything else (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp import web
from livekit.protocol.webhook import WebhookEvent

from db import migrate
from db.errors import DatabaseError, Unavailable
from webhooks import effects
from webhooks.commits import GroupCommit
from webhooks.errors import BodyTooLarge, InvalidWebhookEvent, WebhookVerificationError
from webhooks.events import parse_event
from webhooks.journal import DatabaseAway, Journal, JournalFull
from webhooks.verify import WebhookVerifier

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/livekit/webhook"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# A body must arrive within this: a client that trickles it would hold a connection (and a
# handler) open for as long as it likes.
DEFAULT_BODY_TIMEOUT_S = 5.0
# For the server that runs the app (web.AppRunner / TestServer): after an answer sent before the
# body was read (413, 408), aiohttp keeps reading and discarding it for this long, so that the
# client reads the answer rather than a reset, then closes; its default (10 s) on top of the body
# timeout would let a trickling client hold the connection for 15 s.
RUNNER_OPTIONS = {"lingering_time": 2.0}
DEFAULT_JOURNAL_MAX_BYTES = 256 * 1024 * 1024
# Groups of deliveries being stored at once (webhooks/commits.py): each lane takes every delivery
# that queued for it while its previous group ran. Two, for the 2 cores we run on: fewer lanes make
# bigger groups, and a group costs one round trip whatever its size (bench/webhooks.py, one
# statement per group: 2,220-2,250 deliveries/s with 2 lanes, 2,070-2,220 with 3, 2,170 with 4;
# with four round trips per group, 4 or 8 lanes cost ~30% more CPU per delivery than 2).
DEFAULT_COMMIT_LANES = 2
UNVERIFIED = "unverified delivery"
_CHUNK = 64 * 1024
# The answers to a stored delivery, encoded once.
_STATUS_BODIES = {status: json.dumps({"status": status}).encode()
                  for status in ("applied", "ignored", "duplicate")}
_READY_TIMEOUT_S = 2.0


def create_app(
    *, pool: asyncpg.Pool, verifier: WebhookVerifier, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S, journal_dir: Path | None = None,
    journal_max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES, journal_interval: float = 1.0,
    commit_lanes: int = DEFAULT_COMMIT_LANES,
) -> web.Application:
    """The application; the caller owns `pool` and closes it after the app has shut down. With
    a `journal_dir`, deliveries that arrive while the database is away are journaled there
    (the app opens the journal at startup, applies it every `journal_interval` s, closes it)."""
    journal = Journal(journal_dir, max_bytes=journal_max_bytes) if journal_dir is not None else None
    commits = GroupCommit(pool, lanes=commit_lanes)
    handlers = _Handlers(pool, verifier, max_body_bytes, body_timeout, journal, commits)
    app = web.Application(client_max_size=max_body_bytes)
    app.on_cleanup.append(lambda _app: commits.close())
    if journal is not None:
        app.cleanup_ctx.append(lambda _app: _journal_replays(journal, handlers, journal_interval))
    # Only POST is routed here: aiohttp answers any other method with 405 and an Allow header.
    app.router.add_post(WEBHOOK_PATH, handlers.webhook)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    return app


@contextlib.asynccontextmanager
async def _journal_replays(journal: Journal, handlers: _Handlers, interval: float) -> AsyncIterator[None]:
    journal.open()
    task = asyncio.create_task(journal.keep_replaying(handlers.apply_journaled, interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        journal.close()


class _Handlers:
    def __init__(self, pool: asyncpg.Pool, verifier: WebhookVerifier, max_body_bytes: int,
                 body_timeout: float, journal: Journal | None, commits: GroupCommit) -> None:
        self._pool = pool
        self._verifier = verifier
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout
        self._journal = journal
        self._commits = commits

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            body = _arrived_body(request, self._max_body_bytes)
            if body is None:
                async with asyncio.timeout(self._body_timeout):
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
        except TimeoutError:
            log.warning("rejected webhook from %s: body not received in %s s", request.remote,
                        self._body_timeout)
            response = _error(408, "body not received in time")
            response.force_close()
            return response
        except WebhookVerificationError as exc:
            log.warning("rejected webhook from %s: %s", request.remote, exc.reason)
            return _error(401, UNVERIFIED)
        except InvalidWebhookEvent as exc:
            log.warning("rejected verified webhook from %s: %s", request.remote, exc)
            return _error(400, str(exc))

        try:
            result = await self._commits.store(event, body.decode())
        except Unavailable as exc:
            return await self._keep(event, body, exc)
        except DatabaseError:
            log.exception("webhook %s (%s) failed", event.id, event.event)
            return _error(500, "could not record the event")
        log.debug("webhook %s %s: %s", event.id, event.event, result or "duplicate")
        return web.Response(body=_STATUS_BODIES[result or "duplicate"], content_type="application/json")

    async def _keep(self, event: WebhookEvent, body: bytes, cause: Unavailable) -> web.Response:
        """The database is away: journal the delivery (200) or, without room for it, 503."""
        if self._journal is not None:
            try:
                await self._journal.keep(body.decode())
            except (JournalFull, OSError) as exc:
                log.error("webhook %s (%s) not kept, database unavailable (%s) and the journal "
                          "refused it: %s", event.id, event.event, cause, exc)
            else:
                log.warning("webhook %s (%s) journaled, database unavailable: %s",
                            event.id, event.event, cause)
                return web.json_response({"status": "journaled"})
        else:
            log.warning("webhook %s (%s) not stored, database unavailable: %s",
                        event.id, event.event, cause)
        return _error(503, "database unavailable")

    async def apply_journaled(self, body: str) -> None:
        """Store and apply a journaled delivery (verified when it arrived). Raises DatabaseAway
        while the database is; a delivery the database rejects for good is logged and dropped."""
        event = parse_event(body)
        try:
            await self._commits.store(event, body)
        except Unavailable as exc:
            raise DatabaseAway() from exc
        except (DatabaseError, InvalidWebhookEvent):
            log.exception("journaled webhook %s (%s) could not be applied; dropped",
                          event.id, event.event)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when the database answers and every migration in sql/ is applied."""
        try:
            async with self._pool.acquire(timeout=_READY_TIMEOUT_S) as conn:
                pending = await migrate.pending(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The driver's words (host, port, role, database) are for the log, not for anyone
            # who can reach this endpoint.
            log.warning("not ready: database unavailable: %r", exc)
            return web.json_response({"ready": False, "reason": "database unavailable"}, status=503)
        except migrate.MigrationError as exc:
            log.warning("not ready: %s", exc)
            return web.json_response({"ready": False, "reason": "database schema not usable"},
                                     status=503)
        if pending:
            return web.json_response({"ready": False, "pending_migrations": pending}, status=503)
        return web.json_response({"ready": True})


def _arrived_body(request: web.Request, limit: int) -> bytes | None:
    """The body if it all came with the headers, as a webhook's few KB usually do: then there is
    nothing to wait for and no timer to arm (a tenth of the handler's own time). BodyTooLarge
    when Content-Length says it is over `limit`; None when the rest is still to come."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    content = request.content
    if not content.is_eof() or content.exception() is not None:
        return None
    body = content.read_nowait()
    if len(body) > limit:
        raise BodyTooLarge()
    return body


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, or BodyTooLarge as soon as it is known to exceed `limit` while streaming it."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
