"""The delivery loop: relay new outbox events, claim due deliveries, send each one signed, record
every attempt.

Isolation: each endpoint has its own slots (`per_endpoint` requests at a time), a claim never
takes more for an endpoint whose slots are full, and every request has a hard timeout; so a slow
or dead receiver holds its own slots and nothing else. The call path only ever inserted an
outbox row: it waits on none of this.

Wake-ups: a NOTIFY from the outbox (sent at the commit of the change) or a finished delivery
starts the next pass at once; otherwise a pass runs every `poll_interval_s`, which is also what
brings retries back when they fall due.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from db.outbound import costs, deliveries, endpoints, relay
from db.outbound.deliveries import Claimed
from webhooks.outbound import metrics, signing
from webhooks.outbound.retry import RetryPolicy
from webhooks.outbound.sender import Response, Sender

log = logging.getLogger(__name__)

CHANNEL = "outbound_events"
GATHER_S = 0.005


@dataclass(frozen=True)
class OutboundOptions:
    timeout_s: float = 10.0
    per_endpoint: int = 4
    max_in_flight: int = 64
    poll_interval_s: float = 1.0
    relay_batch: int = 1000
    counts_interval_s: float = 15.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is ours: its wait for a slot, its request, its record."""
        return timedelta(seconds=self.timeout_s * 3 + 30)


def body(claimed: Claimed, data: dict) -> bytes:
    """The JSON of a delivery: the Standard Webhooks envelope plus our sequence number."""
    return json.dumps({
        "id": str(claimed.event_id), "type": claimed.event_type,
        "timestamp": claimed.occurred_at.isoformat(), "organization_id": str(claimed.organization_id),
        "sequence": claimed.sequence, "data": data,
    }, separators=(",", ":"), default=str).encode()


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, *, options: OutboundOptions | None = None,
                 sender: Sender | None = None) -> None:
        self._pool = pool
        self._options = options or OutboundOptions()
        self._own_sender = sender is None
        self._sender = sender or Sender(timeout_s=self._options.timeout_s)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._claimed: collections.Counter[uuid.UUID] = collections.Counter()
        self._slots: dict[uuid.UUID, asyncio.Semaphore] = {}
        self._counted_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, then let in-flight requests finish (up to a timeout)."""
        listener = await self._listen()
        try:
            while not stop.is_set():
                try:
                    full = await self.step()
                except Exception:
                    log.exception("outbound delivery pass failed; trying again")
                    full = False
                if not full:
                    await self._idle(stop)
        finally:
            if listener is not None:
                await self._unlisten(listener)
            await self.drain(self._options.timeout_s)
            if self._own_sender:
                await self._sender.close()

    async def step(self) -> bool:
        """One pass: relay, claim, start the deliveries. True when it took all it could (more
        may be due right away)."""
        opts = self._options
        async with self._pool.acquire() as conn:
            relayed, _ = await relay.relay(conn, limit=opts.relay_batch)
            metrics.EVENTS_RELAYED.inc(relayed)
            await self._count(conn)
            free = opts.max_in_flight - len(self._tasks)
            if free <= 0:
                return False
            busy = [e for e, n in self._claimed.items() if n >= opts.per_endpoint]
            claimed = await deliveries.claim_due(conn, limit=free, lease=opts.lease, busy_endpoints=busy,
                                                 per_endpoint=opts.per_endpoint)
        for c in claimed:
            self._claimed[c.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(c))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return relayed >= opts.relay_batch or (bool(claimed) and len(claimed) == free)

    async def drain(self, grace_s: float) -> None:
        """Wait for the deliveries in flight (their leases bring back any cut short)."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _deliver(self, c: Claimed) -> None:
        try:
            slot = self._slots.setdefault(c.endpoint_id, asyncio.Semaphore(self._options.per_endpoint))
            async with slot:
                response = await self._send(c)
            await self._record(c, response)
        except Exception:
            log.exception("delivery %s of event %s failed unexpectedly", c.delivery_id, c.event_id)
        finally:
            self._claimed[c.endpoint_id] -= 1
            if not self._claimed[c.endpoint_id]:
                del self._claimed[c.endpoint_id]

    async def _send(self, c: Claimed) -> Response:
        data = c.payload
        if c.event_type == "call.ended" and data.get("cost") is None:
            async with self._pool.acquire() as conn:
                data = {**data, "cost": await costs.call_cost(conn, call_id=uuid.UUID(data["call_id"]))}
        payload = body(c, data)
        now = datetime.now(UTC)
        secrets = c.signing_secrets(now)
        headers = signing.headers(secrets, msg_id=str(c.event_id), timestamp=int(now.timestamp()),
                                  body=payload)
        metrics.IN_FLIGHT.inc()
        try:
            return await self._sender.post(c.url, headers=headers, body=payload)
        finally:
            metrics.IN_FLIGHT.dec()

    async def _record(self, c: Claimed, response: Response) -> None:
        attempt = c.attempts + 1
        retry_in = None
        if response.ok:
            status = "delivered"
        elif response.gone:
            status = "dead"
        else:
            retry_in = self._options.retry.delay_after(attempt)
            status = "pending" if retry_in is not None else "dead"
        async with self._pool.acquire() as conn, conn.transaction():
            await deliveries.record_attempt(
                conn, delivery_id=c.delivery_id, lease=c.lease, attempt=attempt, status=status,
                response_status=response.status, latency_ms=response.latency_ms, error=response.error,
                retry_in=retry_in)
            if response.gone:
                await endpoints.disable_endpoint(conn, endpoint_id=c.endpoint_id, reason="410 Gone")
        result = "delivered" if response.ok else "gone" if response.gone else "failed"
        metrics.ATTEMPTS.labels(result=result).inc()
        metrics.ATTEMPT_SECONDS.observe(response.latency_ms / 1000)
        if response.gone:
            metrics.ENDPOINTS_DISABLED.inc()
            log.warning("endpoint %s answered 410 Gone: disabled", c.endpoint_id)
        log.info("%s %s #%s to endpoint %s: %s (attempt %s, %.0f ms)%s", c.event_type, c.event_id,
                 c.sequence, c.endpoint_id, response.status or response.error, attempt,
                 response.latency_ms, f", retry in {retry_in}" if retry_in else f", {status}")

    async def _count(self, conn: asyncpg.Connection) -> None:
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._counted_at < self._options.counts_interval_s:
            return
        self._counted_at = loop_now
        counts = await deliveries.delivery_counts(conn)
        for status in ("pending", "delivered", "dead"):
            metrics.DELIVERIES.labels(status=status).set(counts.get(status, 0))

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until a wake-up, `stop` or the poll interval; after a wake-up, a moment more, so that
        the deliveries finishing together are refilled by one pass rather than one pass each."""
        stopping = asyncio.create_task(stop.wait())
        waking = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({stopping, waking}, timeout=self._options.poll_interval_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            waking.cancel()
        if self._wake.is_set():
            await asyncio.sleep(GATHER_S)
        self._wake.clear()

    async def _listen(self) -> asyncpg.Connection | None:
        """A connection LISTENing for new outbox rows; without one, polling alone still works."""
        try:
            conn = await self._pool.acquire()
            await conn.add_listener(CHANNEL, self._notified)
            return conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("not listening for outbox notifications (%s): polling only", exc)
            return None

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def _unlisten(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.remove_listener(CHANNEL, self._notified)
        finally:
            await self._pool.release(conn)
