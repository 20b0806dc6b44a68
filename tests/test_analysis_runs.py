"""Manager runs (seed 003): each call of the period categorised once per run as a new version,
the run's KPIs from the stored turns and categorisations, its status and counts, and the
filters (location, configuration version)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from analysis.rules import RulesAnalyser
from analysis.runs import RunRequest, run_analysis
from db.analysis import analyses
from db.desk import configs
from tests.analysis_helpers import make_call
from tests.clock import LA, NY, today

DAY0 = today() - timedelta(days=10)
DAYS = [DAY0 + timedelta(days=i) for i in range(3)]


def at(day_index: int, hour: int, minute: int = 0):
    return datetime.combine(DAYS[0] + timedelta(days=day_index), time(hour, minute), tzinfo=NY)


@pytest.fixture
async def period(pool, tenant):
    """Four calls over three days, and one before the period (not in any run below)."""
    org = tenant.organization_id
    midtown, santa_monica = tenant.midtown_location_id, tenant.santa_monica_location_id
    async with pool.acquire() as conn:
        v2 = await configs.create_config(conn, organization_id=org, instructions="Be brief.",
                                         greeting="Hello.")
        made = {
            "booked": await make_call(conn, organization_id=org, started_at=at(0, 10),
                                      location_id=midtown, agent_config_id=v2.id),
            "question": await make_call(
                conn, organization_id=org, started_at=at(0, 14), location_id=santa_monica,
                turns=[("user", "What time do you open on Saturday?", None),
                       ("assistant", "From nine.", 600.0)], outcome="information_provided"),
            "transferred": await make_call(
                conn, organization_id=org, started_at=at(1, 10, 30), location_id=midtown,
                turns=[("user", "I want to complain about my bill, this is unacceptable", None),
                       ("assistant", "I'll put you through.", 2000.0)], outcome="transferred"),
            "silent": await make_call(conn, organization_id=org, started_at=at(2, 9),
                                      location_id=midtown, turns=[("assistant", "Hello?", None)],
                                      outcome=None, status="abandoned"),
            "before": await make_call(conn, organization_id=org, started_at=at(-5, 10)),
        }
    return made, v2


async def test_a_run_categorises_each_call_once_and_computes_its_kpis(pool, period):
    made, _ = period
    run = await run_analysis(pool, RulesAnalyser(), RunRequest(DAYS[0], DAYS[2]))
    assert (run.status, run.calls_total, run.calls_analysed, run.calls_failed) == ("completed", 4, 4, 0)
    assert run.analyser == "rules" and run.processing_ms >= 0 and run.completed_at
    k = run.kpis
    assert k["calls"] == 4 and k["no_conversation"] == 1
    assert k["calls_per_day"] == {DAYS[0].isoformat(): 2, DAYS[1].isoformat(): 1, DAYS[2].isoformat(): 1}
    assert k["peak_hours"] == {"9": 1, "10": 2, "14": 1}
    # Replies of 800, 1200, 600 and 2000 ms: p50 = 1000, p90 = 1200 + 0.7 * 800.
    assert k["response_ms"] == {"p50": 1000, "p90": 1760, "turns": 4}
    assert k["intents"] == {"book": 1, "question": 1, "complaint": 1}
    assert k["booking_conversion"] == 1.0
    assert k["containment"] == 0.5  # booked and answered; not the transfer nor the silent call
    assert k["success_rate"] == 1.0 and 1 <= k["avg_quality"] <= 10
    async with pool.acquire() as conn:
        assert await analyses.history(conn, call_id=made["before"]) == []
        [version] = await analyses.history(conn, call_id=made["booked"])
        assert version.run_id == run.id and version.version == 1


async def test_a_second_run_makes_new_versions_and_filters_by_location(pool, period):
    made, _ = period
    await run_analysis(pool, RulesAnalyser(), RunRequest(DAYS[0], DAYS[2]))
    run = await run_analysis(pool, RulesAnalyser(),
                             RunRequest(DAYS[0], DAYS[2], location_slug="santa-monica"))
    assert run.calls_total == 1
    # The location's own clock: 14:00 in New York is 11:00 in Santa Monica.
    assert run.kpis["peak_hours"] == {str(at(0, 14).astimezone(LA).hour): 1}
    async with pool.acquire() as conn:
        versions = await analyses.history(conn, call_id=made["question"])
        assert [v.version for v in versions] == [1, 2] and versions[-1].run_id == run.id
        assert (await analyses.current(conn, call_id=made["question"])).version == 2


async def test_a_run_filters_by_configuration_version(pool, period):
    made, v2 = period
    run = await run_analysis(pool, RulesAnalyser(),
                             RunRequest(DAYS[0], DAYS[2], config_version=v2.version))
    assert run.calls_total == 1 and run.kpis["intents"] == {"book": 1}


class FailsOnComplaints:
    """Analyses like the rules, except that a complaint breaks it."""

    name, model, prompt_version = "flaky", None, None

    async def analyse(self, facts, config):
        if "complain" in " ".join(t.content for t in facts.caller_turns):
            raise RuntimeError("model down")
        return await RulesAnalyser().analyse(facts, config)

    async def aclose(self):
        pass


async def test_a_run_with_calls_it_could_not_analyse_is_partial(pool, period):
    run = await run_analysis(pool, FailsOnComplaints(), RunRequest(DAYS[0], DAYS[2]))
    assert (run.status, run.calls_analysed, run.calls_failed) == ("partial", 3, 1)
    assert run.kpis["failed"] == 1 and "complaint" not in run.kpis["intents"]


async def test_a_run_needs_a_known_location(pool, period):
    from db.errors import NotFound

    with pytest.raises(NotFound, match="no location 'atlantis'"):
        await run_analysis(pool, RulesAnalyser(), RunRequest(DAYS[0], DAYS[2], location_slug="atlantis"))
