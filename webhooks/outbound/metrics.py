"""The delivery loop's Prometheus metrics (served at the webhook service's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RELAYED = Counter("frontdesk_outbound_events_relayed", "Outbox events numbered and fanned out")
ATTEMPTS = Counter("frontdesk_outbound_attempts", "Delivery attempts, by result", ["result"])
ATTEMPT_SECONDS = Histogram(
    "frontdesk_outbound_attempt_duration_seconds", "Time from request to response (or timeout)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
IN_FLIGHT = Gauge("frontdesk_outbound_in_flight", "Deliveries being attempted now")
DELIVERIES = Gauge("frontdesk_outbound_deliveries", "Deliveries in the database, by status", ["status"])
ENDPOINTS_DISABLED = Counter("frontdesk_outbound_endpoints_disabled", "Endpoints disabled on 410 Gone")
