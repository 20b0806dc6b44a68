"""Issue 14's costs and KPIs through the API: a call's cost in its detail (a part no price covers
stays null, and so does the total), /v1/kpis/daily with its filters, peak hours, and two
configuration versions compared; each under RLS as the key's member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from tests.api.conftest import client

pytestmark = pytest.mark.db

PRICED = [{"type": "llm_usage", "provider": "api.openai.com", "model": "gpt-4o-mini",
           "input_tokens": 12_000, "input_cached_tokens": 0, "output_tokens": 800}]
UNPRICED = [{"type": "llm_usage", "provider": "llm.invalid", "model": "nobody-prices-me",
             "input_tokens": 5_000, "output_tokens": 300}]
SET_USAGE = "update voice_calls set model_usage = $2 where id = $1"


async def test_call_detail_carries_its_cost_and_null_parts_stay_null(api_server, world):
    conn = await connect(world.dsn)
    try:
        await conn.execute(SET_USAGE, world.santa_monica_call_id, PRICED)
        await conn.execute(SET_USAGE, world.demo_call_id, UNPRICED)
        expected = await conn.fetchrow("select llm, total from call_costs where call_id = $1",
                                       world.santa_monica_call_id)
    finally:
        await conn.close()
    with client(api_server, world.keys["read"]) as c:
        priced = c.get(f"/v1/calls/{world.santa_monica_call_id}").json()["cost"]
        unpriced = c.get(f"/v1/calls/{world.demo_call_id}").json()["cost"]
    # gpt-4o-mini's seeded list price: 0.15 per million input tokens, 0.60 per million output.
    assert priced["llm"] == pytest.approx(12_000 * 0.15e-6 + 800 * 0.60e-6)
    assert priced["llm"] == pytest.approx(float(expected["llm"]))
    assert priced["total"] == pytest.approx(float(expected["total"])) and priced["unpriced"] is None
    assert priced["currency"] == "USD" and priced["turns"] == 3
    assert priced["cost_per_turn"] == pytest.approx(priced["total"] / 3, abs=1e-8)  # rounded to 8 places
    assert unpriced["llm"] is None and unpriced["total"] is None and unpriced["cost_per_turn"] is None
    assert "llm:llm.invalid/nobody-prices-me" in unpriced["unpriced"]
    assert unpriced["stt"] == 0 and unpriced["tts"] == 0  # text-mode usage: nothing heard or spoken


def _window() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"from": str(today - timedelta(days=20)), "to": str(today + timedelta(days=2))}


def test_daily_kpis_with_their_filters(api_server, world):
    tenant = world.tenant
    with client(api_server, world.keys["read"]) as c:
        def calls(**params) -> int:
            answer = c.get("/v1/kpis/daily", params={**_window(), **params})
            assert answer.status_code == 200, answer.text
            return sum(row["calls"] for row in answer.json())

        rows = c.get("/v1/kpis/daily", params=_window()).json()
        assert calls() == 8 and calls(status="ignored") == 8
        assert calls(location_id=str(tenant.santa_monica_location_id)) == 1
        assert calls(agent_config_id=str(tenant.config_v1_id)) == 1
        assert calls(agent_config_id=str(tenant.config_v2_id)) == 1
        santa_monica = c.get("/v1/kpis/daily", params={
            **_window(), "location_id": str(tenant.santa_monica_location_id)}).json()
        assert calls(**{"from": str(datetime.now(UTC).date() + timedelta(days=2)),
                                    "to": str(datetime.now(UTC).date() + timedelta(days=3))}) == 0
        assert c.get("/v1/kpis/daily", params={"from": "2026-02-01", "to": "2026-01-01"}).status_code == 422
        assert c.get("/v1/kpis/daily", params={"from": "2020-01-01", "to": "2026-01-01"}).status_code == 422
    with client(api_server, world.keys["other"]) as c:
        other = c.get("/v1/kpis/daily", params=_window()).json()
    assert {row["location_id"] for row in rows} == {str(tenant.midtown_location_id),
                                                    str(tenant.santa_monica_location_id)}
    [day] = santa_monica
    assert (day["transferred"], day["answered"], day["containment_rate"]) == (1, 1, 0)
    assert day["voice_to_voice_p50_ms"] >= 900  # its replies took 600, 1150 and 900 ms
    assert day["agent_config_version"] == 1
    assert sum(row["calls"] for row in other) == 1  # the other organisation's own call only


def test_peak_hours_and_two_versions_compared(api_server, world):
    tenant = world.tenant
    with client(api_server, world.keys["read"]) as c:
        hours = c.get("/v1/kpis/peak-hours", params=_window()).json()
        compared = c.get("/v1/kpis/compare", params={
            **_window(), "a": str(tenant.config_v2_id), "b": str(tenant.config_v1_id)}).json()
    with client(api_server, world.keys["other"]) as c:
        hidden = c.get("/v1/kpis/compare",
                       params={"a": str(tenant.config_v2_id), "b": str(tenant.config_v1_id)})
    assert sum(h["calls"] for h in hours) == 8
    assert [h["calls"] for h in hours] == sorted((h["calls"] for h in hours), reverse=True)
    assert all(0 <= h["hour_of_week"] < 168 and h["hour"] == h["hour_of_week"] % 24 for h in hours)
    assert [(v["agent_config_id"], v["agent_config_version"], v["calls"]) for v in compared["configs"]] == [
        (str(tenant.config_v2_id), 2, 1), (str(tenant.config_v1_id), 1, 1)]
    v2, v1 = compared["configs"]
    assert (v2["containment_rate"], v1["containment_rate"]) == (1, 0)
    assert hidden.status_code == 404
