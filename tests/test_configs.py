"""Agent configs: versions per scope, one active, location override over organisation default,
atomic activation and rollback."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from db.demo.seed import ESCALATION_NUMBER, seed_demo
from db.desk import configs
from db.desk.config_text import UnknownPlaceholder, fill
from db.desk.configs import InvalidPolicy
from db.desk.slots import BookingRules
from db.errors import InvalidInput

pytestmark = pytest.mark.db


async def active_versions(conn, organization_id) -> list[tuple]:
    rows = await conn.fetch("""select location_id, version from agent_configs
                                where organization_id = $1 and is_active order by location_id nulls first""",
                            organization_id)
    return [(r["location_id"], r["version"]) for r in rows]


async def test_the_demo_runs_version_two_with_its_policies(conn):
    demo = await seed_demo(conn)
    config = await configs.active_config(conn, location_id=demo.midtown_location_id)
    assert (config.id, config.version, config.is_active) == (demo.config_v2_id, 2, True)
    assert config.policy("escalation_phone") == ESCALATION_NUMBER
    assert config.booking_rules == BookingRules(lead_time_minutes=60, max_days_ahead=90, buffer_minutes=10)
    assert config.greeting.startswith("Thanks for calling Bright Smile Dental")
    assert (config.stt_model, config.llm_model) == ("deepgram/nova-3", "openai/gpt-4.1-mini")
    default = await configs.active_config(conn, organization_id=demo.organization_id)
    assert default.id == demo.config_v2_id


async def test_rollback_activates_the_previous_version_atomically(conn):
    demo = await seed_demo(conn)
    rolled = await configs.rollback_config(conn, organization_id=demo.organization_id)
    assert (rolled.id, rolled.version, rolled.is_active) == (demo.config_v1_id, 1, True)
    assert await active_versions(conn, demo.organization_id) == [(None, 1)]
    current = await configs.active_config(conn, location_id=demo.santa_monica_location_id)
    assert current.greeting == "Thank you for calling Bright Smile Dental. How can I help you?"
    with pytest.raises(InvalidInput, match="nothing to roll back to"):
        await configs.rollback_config(conn, organization_id=demo.organization_id)
    forward = await configs.rollback_config(conn, organization_id=demo.organization_id, to_version=2)
    assert forward.id == demo.config_v2_id
    assert await active_versions(conn, demo.organization_id) == [(None, 2)]


async def test_a_new_version_numbers_up_in_its_scope_and_waits_to_be_activated(conn):
    demo = await seed_demo(conn)
    v3 = await configs.create_config(conn, organization_id=demo.organization_id, instructions="Be brief.",
                                     greeting="Bright Smile, hello!", policies={"lead_time_minutes": 30})
    assert (v3.version, v3.is_active) == (3, False)
    assert (await configs.active_config(conn, organization_id=demo.organization_id)).version == 2
    await configs.activate_config(conn, config_id=v3.id)
    assert (await configs.active_config(conn, organization_id=demo.organization_id)).version == 3
    history = await configs.list_configs(conn, organization_id=demo.organization_id)
    assert [c.version for c in history] == [3, 2, 1]
    rolled = await configs.rollback_config(conn, organization_id=demo.organization_id)
    assert rolled.version == 2


async def test_a_location_override_wins_for_that_location_only(conn):
    demo = await seed_demo(conn)
    override = await configs.create_config(
        conn, organization_id=demo.organization_id, location_id=demo.santa_monica_location_id,
        instructions="You answer for Santa Monica.", greeting="Bright Smile Santa Monica, hi!", activate=True)
    assert override.version == 1  # versions count per scope
    santa_monica = await configs.active_config(conn, location_id=demo.santa_monica_location_id)
    midtown = await configs.active_config(conn, location_id=demo.midtown_location_id)
    assert santa_monica.id == override.id and midtown.id == demo.config_v2_id
    assert await active_versions(conn, demo.organization_id) == [
        (None, 2), (demo.santa_monica_location_id, 1)]
    with pytest.raises(InvalidInput, match="nothing to roll back to"):
        await configs.rollback_config(conn, organization_id=demo.organization_id,
                                      location_id=demo.santa_monica_location_id)


async def test_concurrent_activations_leave_exactly_one_active_version(pool):
    async with pool.acquire() as conn:
        demo = await seed_demo(conn)
        versions = [demo.config_v1_id, demo.config_v2_id]
        for i in range(6):
            created = await configs.create_config(conn, organization_id=demo.organization_id,
                                                  instructions=f"Version {i + 3}", greeting="Hello")
            versions.append(created.id)

    async def activate(config_id):
        async with pool.acquire() as conn:
            return await configs.activate_config(conn, config_id=config_id)

    results = await asyncio.gather(*(activate(v) for v in versions * 2))
    assert all(r.is_active for r in results)
    async with pool.acquire() as conn:
        assert len(await active_versions(conn, demo.organization_id)) == 1


async def test_policies_are_validated_and_the_escalation_number_normalised(conn):
    demo = await seed_demo(conn)
    config = await configs.create_config(
        conn, organization_id=demo.organization_id, instructions="x", greeting="y",
        policies={"escalation_phone": "(555) 010-0999", "max_call_minutes": 12, "custom": "kept"})
    assert config.policies == {"escalation_phone": "+15550100999", "max_call_minutes": 12, "custom": "kept"}
    assert config.policy("silence_timeout_seconds") == 20  # the default
    for bad in ({"lead_time_minutes": -5}, {"buffer_minutes": "ten"}, {"max_days_ahead": True},
                {"escalation_phone": "call the manager"}, {"escalation_phone": "100"}):
        with pytest.raises(InvalidPolicy):
            await configs.create_config(conn, organization_id=demo.organization_id, instructions="x",
                                        greeting="y", policies=bad)
    with pytest.raises(InvalidInput, match="greeting"):
        await configs.create_config(conn, organization_id=demo.organization_id, instructions="x",
                                    greeting=" ")


async def test_the_database_refuses_two_active_versions_and_bad_policies(conn):
    demo = await seed_demo(conn)
    with pytest.raises(asyncpg.UniqueViolationError, match="agent_configs_one_active_key"):
        await conn.execute("update agent_configs set is_active = true where organization_id = $1",
                           demo.organization_id)
    with pytest.raises(asyncpg.CheckViolationError, match="agent_configs_policies_check"):
        await conn.execute("""update agent_configs set policies = '{"escalation_phone": "911"}'
                               where id = $1""", demo.config_v1_id)


async def test_a_slot_step_under_five_minutes_is_refused_in_code_and_by_the_database(conn):
    demo = await seed_demo(conn)
    for step in (0, 4):
        with pytest.raises(InvalidPolicy, match="slot_step_minutes"):
            configs.validate_policies({"slot_step_minutes": step})
        with pytest.raises(InvalidPolicy, match="slot_step_minutes"):
            await configs.create_config(conn, organization_id=demo.organization_id, instructions="x",
                                        greeting="y", policies={"slot_step_minutes": step})
    with pytest.raises(asyncpg.CheckViolationError, match="agent_configs_slot_step_check"):
        await conn.execute("""insert into agent_configs (organization_id, version, instructions, greeting,
                              policies) values ($1, 99, 'x', 'y', '{"slot_step_minutes": 0}')""",
                           demo.organization_id)
    assert configs.validate_policies({"slot_step_minutes": 5}) == {"slot_step_minutes": 5}


async def test_configuration_text_is_literal_and_unknown_placeholders_are_refused(conn):
    demo = await seed_demo(conn)
    for text in ("Say {0}", "5{", '{"a": 1}', "}{", "Hello {business}"):
        config = await configs.create_config(conn, organization_id=demo.organization_id,
                                             instructions=text, greeting=text)
        assert config.greeting == text
    with pytest.raises(UnknownPlaceholder, match=r"greeting has unknown placeholder\(s\) \{buisness\}"):
        await configs.create_config(conn, organization_id=demo.organization_id, instructions="x",
                                    greeting="Thanks for calling {buisness}")
    with pytest.raises(UnknownPlaceholder, match="instructions"):
        await configs.create_config(conn, organization_id=demo.organization_id, greeting="x",
                                    instructions="Mention {today} and {0} and {tomorrow}")
    # One pass: a value holding a placeholder is inserted as it is, never read again.
    assert fill("{business} {0} {location}", {"business": "{location}", "location": "Midtown"}) == (
        "{location} {0} Midtown")
