"""`python -m db seed --demo`: a realistic tenant, created once however often it runs."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

from db.demo.seed import LOS_ANGELES_NUMBER, NEW_YORK_NUMBER, seed_demo
from db.desk import locations
from db.desk.knowledge import CATEGORIES

pytestmark = pytest.mark.db

COUNTS = """
select (select count(*) from organizations) as organizations,
       (select count(*) from locations) as locations,
       (select count(*) from business_hours) as business_hours,
       (select count(*) from business_hour_exceptions) as exceptions,
       (select count(*) from services) as services,
       (select count(*) from providers) as providers,
       (select count(*) from provider_services) as provider_services,
       (select count(*) from knowledge_base) as facts,
       (select count(*) from agent_configs) as configs
"""


async def test_seeding_twice_creates_the_tenant_once(conn):
    first = await seed_demo(conn)
    counts = dict(await conn.fetchrow(COUNTS))
    second = await seed_demo(conn)
    assert first.created_anything and not second.created_anything
    assert set(second.created.values()) == {0}
    assert dict(await conn.fetchrow(COUNTS)) == counts
    assert (second.organization_id, second.services, second.config_v2_id) == (
        first.organization_id, first.services, first.config_v2_id)


async def test_the_demo_tenant_has_what_the_demos_need(conn):
    demo = await seed_demo(conn)
    counts = await conn.fetchrow(COUNTS)
    assert counts["organizations"] == 1 and counts["locations"] == 2
    assert counts["services"] >= 5 and counts["providers"] >= 4 and counts["facts"] >= 30
    midtown = await locations.find_location_by_number(conn, phone_number=NEW_YORK_NUMBER)
    santa_monica = await locations.find_location_by_number(conn, phone_number=LOS_ANGELES_NUMBER)
    assert (midtown.id, santa_monica.id) == (demo.midtown_location_id, demo.santa_monica_location_id)
    assert midtown.timezone != santa_monica.timezone
    categories = await conn.fetch("select distinct category::text from knowledge_base")
    assert {r["category"] for r in categories} == set(CATEGORIES)
    configs = await conn.fetch("select version, is_active from agent_configs order by version")
    assert [(r["version"], r["is_active"]) for r in configs] == [(1, False), (2, True)]
    # Midtown closes for lunch (two intervals a weekday); both close on their state's public
    # holidays; Santa Monica opens Sundays.
    lunch_days = await conn.fetchval("""select count(*) from (select day_of_week from business_hours
        where location_id = $1 group by 1 having count(*) = 2) d""", midtown.id)
    assert lunch_days == 5
    holidays = await conn.fetch("select region, public_holidays from locations order by region desc")
    assert [tuple(r) for r in holidays] == [("NY", "regional"), ("CA", "regional")]
    sundays = "select count(*) from business_hours where location_id = $1 and day_of_week = 7"
    assert await conn.fetchval(sundays, santa_monica.id) == 1


async def run_cli(dsn: str) -> str:
    env = {**os.environ, "DATABASE_URL": dsn}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "db", "seed", "--demo", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_the_command_says_what_it_created_then_that_nothing_was_needed(db_dsn):
    first = await run_cli(db_dsn)
    assert re.search(r"knowledge-base facts: \d\d+ created", first) and "+15550100100" in first
    second = await run_cli(db_dsn)
    assert "already present: nothing created" in second and not re.search(r"\d+ created", second)
