"""Delivering outbound webhooks to a real local receiver: signed per Standard Webhooks (verified
with the `standardwebhooks` library), retried with backoff, dead when retries run out, the
endpoint disabled on 410 Gone, every attempt recorded, a slow receiver holding up nobody else,
replay, secret rotation, and the delivery metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.outbound import cli, endpoints, outbox
from metrics import render
from tests.frontdesk_helpers import make_shop
from tests.outbound_receiver import Receiver
from webhooks.outbound.dispatcher import Dispatcher, OutboundOptions
from webhooks.outbound.retry import STANDARD_DELAYS, RetryPolicy

pytestmark = pytest.mark.db

FAST_RETRIES = RetryPolicy(delays=(timedelta(seconds=0.1), timedelta(seconds=0.2)), jitter=0)
OPTIONS = OutboundOptions(timeout_s=2.0, poll_interval_s=0.05, retry=FAST_RETRIES)

ATTEMPTS = """
select a.response_status, a.error, a.latency_ms, d.status::text as status from outbound_attempts a
  join outbound_deliveries d on d.id = a.delivery_id
 where d.endpoint_id = $1 order by a.attempted_at, a.id
"""


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def org(pool):
    async with pool.acquire() as conn:
        return await make_shop(conn, slug="shop")


@contextlib.asynccontextmanager
async def delivering(pool, options: OutboundOptions = OPTIONS):
    stop = asyncio.Event()
    task = asyncio.create_task(Dispatcher(pool, options=options).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def add(pool, org, receiver: Receiver, name: str, **behaviour) -> endpoints.Endpoint:
    async with pool.acquire() as conn:
        ep = await endpoints.add_endpoint(conn, organization_id=org.organization_id, url=receiver.url(name))
    receiver.route(name, ep.secret, **behaviour)
    return ep


async def emit(pool, org, n: int, event_type: str = "call.analyzed") -> None:
    async with pool.acquire() as conn:
        for i in range(n):
            await outbox.enqueue(conn, organization_id=org.organization_id, event_type=event_type,
                                 payload={"n": i})


async def attempts_of(pool, endpoint_id):
    async with pool.acquire() as conn:
        return await conn.fetch(ATTEMPTS, endpoint_id)


async def test_every_delivery_is_signed_numbered_and_recorded(pool, org, receiver):
    one = await add(pool, org, receiver, "one")
    two = await add(pool, org, receiver, "two")
    async with delivering(pool):
        await emit(pool, org, 5)
        await receiver.wait_for(lambda: len(receiver.received) == 10)
    assert receiver.rejected == []
    for name in ("one", "two"):
        got = receiver.of(name)
        assert sorted(d.body["sequence"] for d in got) == [1, 2, 3, 4, 5]
        assert all(d.headers["webhook-id"] == d.body["id"] and d.body["type"] == "call.analyzed" for d in got)
        assert sorted(d.body["data"]["n"] for d in got) == [0, 1, 2, 3, 4]
    for ep in (one, two):
        rows = await attempts_of(pool, ep.id)
        assert [(r["response_status"], r["error"], r["status"]) for r in rows] == \
            [(200, None, "delivered")] * 5
        assert all(r["latency_ms"] > 0 for r in rows)


async def test_a_failing_receiver_is_retried_until_it_answers(pool, org, receiver):
    ep = await add(pool, org, receiver, "flaky", statuses=[500, 503, 200])
    async with delivering(pool):
        await emit(pool, org, 1)
        await receiver.wait_for(lambda: len(receiver.of("flaky")) == 3)
        await asyncio.sleep(0.2)
    rows = await attempts_of(pool, ep.id)
    assert [(r["response_status"], r["error"]) for r in rows] == \
        [(500, "HTTP 500"), (503, "HTTP 503"), (200, None)]
    assert {r["status"] for r in rows} == {"delivered"}
    assert len({d.headers["webhook-id"] for d in receiver.of("flaky")}) == 1  # the same message each time


async def test_when_retries_run_out_the_delivery_is_dead(pool, org, receiver):
    ep = await add(pool, org, receiver, "down", statuses=[503])
    async with delivering(pool):
        await emit(pool, org, 1)
        await receiver.wait_for(lambda: len(receiver.of("down")) == FAST_RETRIES.max_attempts)
        await asyncio.sleep(0.5)  # long enough for a fourth attempt, were there one
    rows = await attempts_of(pool, ep.id)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"dead"}


async def test_410_gone_disables_the_endpoint_and_kills_what_it_had_pending(pool, org, receiver):
    gone = await add(pool, org, receiver, "gone", statuses=[410])
    fine = await add(pool, org, receiver, "fine")
    async with delivering(pool, OutboundOptions(timeout_s=2.0, poll_interval_s=0.05, per_endpoint=1,
                                                retry=FAST_RETRIES)):
        await emit(pool, org, 3)
        await receiver.wait_for(lambda: len(receiver.of("fine")) == 3)
        await asyncio.sleep(0.3)
    assert len(receiver.of("gone")) == 1  # one at a time: the first answer stops the rest
    async with pool.acquire() as conn:
        ep = await endpoints.get_endpoint(conn, endpoint_id=gone.id)
        states = await conn.fetch("select status::text, count(*) from outbound_deliveries"
                                  " where endpoint_id = $1 group by status", gone.id)
        assert (await endpoints.get_endpoint(conn, endpoint_id=fine.id)).enabled
    assert (ep.enabled, ep.disabled_reason) == (False, "410 Gone")
    assert dict(states) == {"dead": 3}


async def test_a_slow_receiver_holds_up_no_other(pool, org, receiver):
    slow = await add(pool, org, receiver, "slow", delay_s=5.0)
    await add(pool, org, receiver, "quick")
    started = time.monotonic()
    async with delivering(pool, OutboundOptions(timeout_s=1.0, poll_interval_s=0.05, per_endpoint=2,
                                                retry=RetryPolicy(delays=(timedelta(hours=1),)))):
        await emit(pool, org, 20)
        await receiver.wait_for(lambda: len(receiver.of("quick")) == 20)
        quick_done = time.monotonic() - started
        await asyncio.sleep(1.5)
    # Two at a time to the slow one, each cut at 1 s: 20 of them would take 10 s in line.
    assert quick_done < 6.0
    rows = await attempts_of(pool, slow.id)
    assert rows and all(r["response_status"] is None and "no answer within 1 s" in r["error"] for r in rows)
    assert all(r["latency_ms"] >= 900 for r in rows)


async def test_replay_by_event_id_and_by_time_range(pool, org, receiver, db_dsn):
    await add(pool, org, receiver, "r")
    async with delivering(pool):
        await emit(pool, org, 3)
        await receiver.wait_for(lambda: len(receiver.of("r")) == 3)
        first = receiver.of("r")[0].body
        [line] = await cli.run(db_dsn, cli.parser().parse_args(["replay", "shop", "--event", first["id"]]))
        assert line == "1 deliveries queued again"
        await receiver.wait_for(lambda: len(receiver.of("r")) == 4)
        assert receiver.of("r")[3].body == first
        [line] = await cli.run(db_dsn, cli.parser().parse_args(
            ["replay", "shop", "--since", "2000-01-01T00:00:00+00:00"]))
        assert line == "3 deliveries queued again"
        await receiver.wait_for(lambda: len(receiver.of("r")) == 7)


async def test_a_rotated_secret_signs_alongside_the_old_one_for_a_while(pool, org, receiver, db_dsn):
    ep = await add(pool, org, receiver, "rot")
    lines = await cli.run(db_dsn, cli.parser().parse_args(["rotate", "shop", str(ep.id)]))
    new_secret = lines[-1]
    assert new_secret.startswith("whsec_") and new_secret != ep.secret
    receiver.routes["/rot"].secrets.append(new_secret)
    async with delivering(pool):
        await emit(pool, org, 1)
        await receiver.wait_for(lambda: len(receiver.of("rot")) == 1)
    assert receiver.of("rot")[0].verified_with == (0, 1)  # both the old and the new secret


async def test_the_endpoints_commands_add_list_and_disable(db_dsn, org):
    added = await cli.run(db_dsn, cli.parser().parse_args(
        ["add", "shop", "https://crm.example/hooks", "--events", "call.ended", "appointment.booked"]))
    assert added[-1].startswith("whsec_")
    [listed] = await cli.run(db_dsn, cli.parser().parse_args(["list", "shop"]))
    endpoint_id = listed.split()[0]
    assert "https://crm.example/hooks  enabled  appointment.booked, call.ended" in listed
    [disabled] = await cli.run(db_dsn, cli.parser().parse_args(["disable", "shop", endpoint_id]))
    assert "disabled (disabled by hand)" in disabled


def sample(name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(render().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


async def test_delivery_metrics_move_with_deliveries(pool, org, receiver):
    await add(pool, org, receiver, "m", statuses=[500, 200])
    delivered = sample("frontdesk_outbound_attempts_total", result="delivered")
    failed = sample("frontdesk_outbound_attempts_total", result="failed")
    relayed = sample("frontdesk_outbound_events_relayed_total")
    async with delivering(pool):
        await emit(pool, org, 2)
        await receiver.wait_for(lambda: len(receiver.of("m")) == 3)
        await asyncio.sleep(0.2)
    assert sample("frontdesk_outbound_attempts_total", result="delivered") == delivered + 2
    assert sample("frontdesk_outbound_attempts_total", result="failed") == failed + 1
    assert sample("frontdesk_outbound_events_relayed_total") == relayed + 2
    assert sample("frontdesk_outbound_attempt_duration_seconds_count") >= 3


def test_the_retry_schedule_lasts_over_a_day_with_bounded_jitter():
    policy = RetryPolicy()
    assert policy.total() > timedelta(hours=24)
    assert policy.max_attempts == len(STANDARD_DELAYS) + 1
    for attempts, base in enumerate(STANDARD_DELAYS, start=1):
        delays = [policy.delay_after(attempts) for _ in range(50)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(set(delays)) > 1  # jittered, not all the same
    assert policy.delay_after(len(STANDARD_DELAYS) + 1) is None
