"""The call log: keyset pages, sort, filters; one call's detail and transcript; the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import client

pytestmark = pytest.mark.db


def _all_pages(c, **params) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        page = c.get("/v1/calls", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return items, pages


def test_pages_cover_every_call_once_in_order(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        newest, pages = _all_pages(c, limit=3)
        oldest, _ = _all_pages(c, limit=4, sort="started_at")
    assert len(newest) == 8 and pages == 3
    assert len({call["id"] for call in newest}) == 8
    started = [call["started_at"] for call in newest]
    assert started == sorted(started, reverse=True)
    assert [call["id"] for call in oldest] == [call["id"] for call in reversed(newest)]
    assert newest[0]["id"] == str(world.demo_call_id)


def test_filters(api_server, world):
    tenant = world.tenant
    with client(api_server, world.keys["read"]) as c:
        def ids(**params):
            return [call["id"] for call in c.get("/v1/calls", params=params).json()["items"]]

        santa_monica = [str(world.santa_monica_call_id)]
        assert ids(location_id=str(tenant.santa_monica_location_id)) == santa_monica
        assert ids(outcome="transferred") == santa_monica
        assert ids(sentiment="negative") == santa_monica
        assert ids(intent="speak_to_person") == santa_monica
        assert ids(caller_number="(310) 555-0123") == santa_monica
        assert ids(agent_config_id=str(tenant.config_v1_id)) == santa_monica
        assert ids(agent_config_id=str(tenant.config_v2_id)) == [str(world.demo_call_id)]
        assert len(ids(status="completed")) == 8 and ids(status="active") == []
        assert len(ids(min_latency_ms=1000)) == 8 and ids(min_latency_ms=1200) == []
        since = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
        assert ids(started_from=since) == [str(world.demo_call_id), str(world.santa_monica_call_id)]
        assert str(world.demo_call_id) not in ids(started_to=since)


def test_call_detail_has_everything_about_the_call(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        detail = c.get(f"/v1/calls/{world.demo_call_id}").json()
    assert detail["call"]["location_name"] == "Bright Smile Dental Midtown"
    assert detail["call"]["config_version"] == 2
    assert [t["sequence_number"] for t in detail["turns"]] == [0, 1, 2, 3, 4]
    assert detail["turns"][2]["e2e_latency_ms"] == 1150 and detail["turns"][1]["end_of_turn_delay_ms"] == 480
    assert [e["event_type"] for e in detail["events"]] == ["tool_call", "appointment_booked"]
    assert detail["analysis"]["sentiment"] == "positive"
    assert detail["appointments"][0]["made_by_this_call"] is True
    assert detail["appointments"][0]["service"] and "confirmation_code" not in detail["appointments"][0]
    assert detail["recording_url"].endswith(".ogg")


def test_transcript_is_plain_text(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        response = c.get(f"/v1/calls/{world.demo_call_id}/transcript")
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert len(lines) == 5
    assert lines[0].endswith("assistant: Thank you for calling Bright Smile Dental, how can I help?")
    assert "user: Yes please." in lines[3]


def test_dashboard_figures(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        data = c.get("/v1/dashboard", params={"days": 30}).json()
    assert sum(n for _, n in data["calls_per_day"]) == 8
    by_location = {r["label"]: r for r in data["by_location"]}
    midtown = by_location["Bright Smile Dental Midtown"]
    assert (midtown["calls"], midtown["booked"], midtown["contained"]) == (7, 1, 7)
    santa_monica = by_location["Bright Smile Dental Santa Monica"]
    assert (santa_monica["calls"], santa_monica["contained"]) == (1, 0)
    assert {r["label"] for r in data["by_config"]} == {"v1", "v2", "none"}
    assert data["latency_turns"] == 24 and data["latency_ms"]["p50"] == 900
    assert sum(n for _, _, n in data["peak_hours"]) == 8


def test_appointments_list_pages(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        page = c.get("/v1/appointments", params={"limit": 1}).json()
        confirmed = c.get("/v1/appointments", params={"status": "cancelled"}).json()
    assert len(page["items"]) == 1 and page["items"][0]["call_id"] == str(world.demo_call_id)
    assert page["next_cursor"] is None
    assert confirmed["items"] == []
