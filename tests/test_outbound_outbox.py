"""The outbox: each change reports its event in its own transaction (a rolled-back change sends
nothing), once; the relay numbers each organisation's events without gaps and fans them out to
the endpoints subscribed to them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.calls import calls, events
from db.desk import appointments
from db.desk.slots import BookingRules
from db.errors import InvalidInput
from db.outbound import deliveries, endpoints, outbox, relay
from tests.clock import monday
from tests.frontdesk_helpers import make_shop

pytestmark = pytest.mark.db

NOW = monday(8)
RULES = BookingRules(lead_time_minutes=60, max_days_ahead=30)

EVENTS = """select event_type, payload, sequence from outbound_events
 where organization_id = $1 order by position"""


async def outbox_of(conn, organization_id) -> list[tuple[str, dict]]:
    return [(r["event_type"], r["payload"]) for r in await conn.fetch(EVENTS, organization_id)]


async def book(conn, shop, starts_at, **kwargs):
    return await appointments.book(conn, location_id=shop.location_id, service_id=shop.service_id,
                                   starts_at=starts_at, customer_name="Ann Lee",
                                   customer_phone="555-010-4444", rules=RULES, now=NOW, **kwargs)


async def test_a_call_reports_started_then_ended_with_outcome_and_duration(conn):
    shop = await make_shop(conn, slug="shop")
    started = datetime.now(UTC) - timedelta(minutes=3)
    await calls.start_call(conn, session_id="RM_out", started_at=started)
    assert await outbox_of(conn, shop.organization_id) == []  # no organisation yet: nobody to tell
    await calls.update_call(conn, session_id="RM_out", organization_id=shop.organization_id,
                            location_id=shop.location_id)
    await calls.finish_call(conn, session_id="RM_out", status="completed", ended_at=started + timedelta(
        seconds=95), closed_by="agent", outcome="booked", end_reason="caller hung up")
    await calls.finish_call(conn, session_id="RM_out", status="completed", ended_at=started + timedelta(
        seconds=96), closed_by="agent", outcome="booked")  # closed again: reported once
    reported = await outbox_of(conn, shop.organization_id)
    assert [t for t, _ in reported] == ["call.started", "call.ended"]
    ended = reported[1][1]
    assert ended["session_id"] == "RM_out" and ended["location_id"] == str(shop.location_id)
    assert (ended["outcome"], ended["duration_seconds"], ended["status"]) == ("booked", 95, "completed")
    assert "cost" in ended and ended["cost"] is None  # priced at delivery, from call_costs


async def test_the_agents_verdict_after_the_webhook_services_is_a_second_call_ended(conn):
    shop = await make_shop(conn, slug="shop")
    now = datetime.now(UTC)
    await calls.start_call(conn, session_id="RM_two")
    await calls.update_call(conn, session_id="RM_two", organization_id=shop.organization_id)
    await calls.finish_call(conn, session_id="RM_two", status="failed", ended_at=now, closed_by="webhook")
    await calls.finish_call(conn, session_id="RM_two", status="completed", ended_at=now, closed_by="agent")
    ended = [p for t, p in await outbox_of(conn, shop.organization_id) if t == "call.ended"]
    assert [(p["status"], p["closed_by"]) for p in ended] == [("failed", "webhook"), ("completed", "agent")]


async def test_a_rolled_back_booking_sends_nothing_and_a_committed_one_is_reported(conn):
    shop = await make_shop(conn, slug="shop")
    tx = conn.transaction()
    await tx.start()
    await book(conn, shop, monday(10))
    await tx.rollback()
    assert await outbox_of(conn, shop.organization_id) == []
    appointment = await book(conn, shop, monday(11))
    [(kind, data)] = await outbox_of(conn, shop.organization_id)
    assert kind == "appointment.booked"
    assert data["appointment_id"] == str(appointment.id)
    assert data["confirmation_code"] == appointment.confirmation_code
    assert datetime.fromisoformat(data["starts_at"]) == monday(11)


async def test_reschedule_and_cancel_are_reported_with_what_changed(conn):
    shop = await make_shop(conn, slug="shop")
    appointment = await book(conn, shop, monday(10))
    await appointments.reschedule(conn, appointment_id=appointment.id, starts_at=monday(14),
                                  rules=RULES, now=NOW)
    await appointments.cancel(conn, appointment_id=appointment.id, reason="sick", now=NOW)
    await appointments.cancel(conn, appointment_id=appointment.id, now=NOW)  # again: no change
    reported = await outbox_of(conn, shop.organization_id)
    assert [t for t, _ in reported] == [
        "appointment.booked", "appointment.rescheduled", "appointment.cancelled"]
    moved, cancelled = reported[1][1], reported[2][1]
    assert datetime.fromisoformat(moved["previous_starts_at"]) == monday(10)
    assert datetime.fromisoformat(moved["starts_at"]) == monday(14)
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "sick")


async def test_a_transfer_that_went_through_is_reported_once(conn):
    shop = await make_shop(conn, slug="shop")
    call = await calls.start_call(conn, session_id="RM_tr")
    await calls.update_call(conn, session_id="RM_tr", organization_id=shop.organization_id)
    failed = events.Event(id=uuid.uuid4(), call_id=call.id, event_type="transfer", payload={"ok": False})
    done = events.Event(id=uuid.uuid4(), call_id=call.id, event_type="transfer",
                        payload={"ok": True, "to": "+12125550100"})
    await events.append_events(conn, events=[failed, done])
    await events.append_events(conn, events=[done])  # a replayed row: skipped, not reported again
    transfers = [p for t, p in await outbox_of(conn, shop.organization_id) if t == "call.transferred"]
    assert [(p["call_id"], p["to"]) for p in transfers] == [(str(call.id), "+12125550100")]


async def test_enqueue_writes_in_the_callers_transaction_and_dedupes(conn):
    shop = await make_shop(conn, slug="shop")
    async with conn.transaction():
        first = await outbox.enqueue(conn, organization_id=shop.organization_id, event_type="call.analyzed",
                                     payload={"summary_id": 1}, dedupe_key="call.analyzed:x:1")
    again = await outbox.enqueue(conn, organization_id=shop.organization_id, event_type="call.analyzed",
                                 payload={"summary_id": 1}, dedupe_key="call.analyzed:x:1")
    assert first is not None and again is None
    assert await outbox_of(conn, shop.organization_id) == [("call.analyzed", {"summary_id": 1})]
    with pytest.raises(InvalidInput):
        await outbox.enqueue(conn, organization_id=shop.organization_id, event_type="call.exploded",
                             payload={})


async def test_the_relay_numbers_each_organisation_without_gaps_and_fans_out_by_subscription(conn):
    a = await make_shop(conn, slug="alpha")
    b = await make_shop(conn, slug="beta")
    every = await endpoints.add_endpoint(conn, organization_id=a.organization_id, url="http://127.0.0.1:9/all")
    bookings = await endpoints.add_endpoint(conn, organization_id=a.organization_id, url="http://127.0.0.1:9/b",
                                            event_types=["appointment.booked"])
    for i in range(3):
        for org in (a, b):
            await outbox.enqueue(conn, organization_id=org.organization_id, event_type="call.analyzed",
                                 payload={"i": i})
    await book(conn, a, monday(10))
    assert await relay.relay(conn, limit=4) == (4, 2)  # a0 b0 a1 b1: a's two to the catch-all
    assert await relay.relay(conn, limit=100) == (3, 3)  # a2 b2 booking: the booking to both
    assert await relay.relay(conn, limit=100) == (0, 0)
    for org in (a, b):
        numbers = [r["sequence"] for r in await conn.fetch(EVENTS, org.organization_id)]
        assert numbers == list(range(1, len(numbers) + 1))
    per_endpoint = dict(await conn.fetch(
        "select endpoint_id, count(*) from outbound_deliveries group by endpoint_id"))
    assert per_endpoint == {every.id: 4, bookings.id: 1}


async def test_an_attempt_in_flight_during_a_replay_does_not_undo_it(conn):
    shop = await make_shop(conn, slug="shop")
    await endpoints.add_endpoint(conn, organization_id=shop.organization_id, url="http://127.0.0.1:9/x")
    event_id = await outbox.enqueue(conn, organization_id=shop.organization_id, event_type="call.analyzed",
                                    payload={})
    await relay.relay(conn)
    [claimed] = await deliveries.claim_due(conn, limit=10, lease=timedelta(minutes=1), busy_endpoints=[],
                                           per_endpoint=4)
    assert await deliveries.claim_due(conn, limit=10, lease=timedelta(minutes=1), busy_endpoints=[],
                                      per_endpoint=4) == []  # leased: nobody else takes it
    assert await deliveries.replay(conn, organization_id=shop.organization_id, event_id=event_id) == 1
    await deliveries.record_attempt(conn, delivery_id=claimed.delivery_id, lease=claimed.lease, attempt=1,
                                    status="delivered", response_status=200, latency_ms=3.0, error=None)
    state = await conn.fetchrow("select status::text, attempts from outbound_deliveries")
    assert tuple(state) == ("pending", 0)  # the replay stands: it will be sent again
    assert await conn.fetchval("select count(*) from outbound_attempts") == 1  # the attempt is on record
