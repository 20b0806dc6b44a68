"""Lookups the receptionist makes mid-turn, at realistic table sizes.

    uv run python bench/lookups.py [--orgs 1000] [--facts-per-org 100] [--iterations 2000]

Builds 1,000 organisations (two locations each, hours, services, providers), 100,000
knowledge-base facts, agent configs per organisation (three versions, an override for one
location in five) and 50,000 background appointments, plus one busy provider with a month of
appointments. Then times, one call after another on one connection, through the db/ functions:
knowledge-base search (random organisation, location and caller question), the active config of
a random location, and slot search over a week of the busy provider's month. Target: p99 under
5 ms for knowledge-base search and config lookup.

Uses DATABASE_URL when set, else an embedded Postgres in a temporary folder; creates its own
database either way and drops it at the end. Ends with `name=value` lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db.desk import configs, knowledge
from db.desk.confirmation_codes import new_confirmation_code
from db.desk.slots import BookingRules, available_slots
from db.migrate import migrate
from db.pool import connect
from db.scratch import scratch_database

QUESTIONS = [
    "do you have parking", "are you open on Sunday", "how much is a cleaning", "how much is a haircut",
    "do you take my insurance", "what is your cancellation policy", "where are you located",
    "can I pay by credit card", "is there wifi", "do you take walk-ins", "what time do you close today",
    "are you open on Thanksgiving", "how long does a massage take", "do you see children",
    "I need to cancel my appointment", "which bus goes there", "is the office wheelchair accessible",
    "how much does whitening cost", "do you speak Spanish", "can I bring my dog",
]

# (category, title, content): %s takes the organisation's number, so facts differ between tenants.
TEMPLATES = [
    ("business_info", "Parking", "Free parking behind the building for customers of office %s."),
    ("business_info", "Address", "We are at %s Main Street, next to the pharmacy, second floor."),
    ("business_info", "Public transport", "Bus line %s stops at the corner; the train station is close."),
    ("business_info", "Accessibility", "The office is wheelchair accessible with an elevator, unit %s."),
    ("business_info", "Languages", "Our team speaks English and Spanish at branch %s."),
    ("hours", "Opening hours", "Open Monday to Friday 9 to 5 and Saturday 9 to 1; branch %s."),
    ("hours", "Sunday opening", "We are closed on Sundays except in December at store %s."),
    ("hours", "Holidays", "Closed on Thanksgiving, Christmas and New Year; office %s."),
    ("hours", "Lunch break", "Closed for lunch from 12:30 to 1:30 on weekdays at site %s."),
    ("policies", "Cancellation policy", "Cancel 24 hours ahead or pay a fee of %s dollars."),
    ("policies", "Insurance", "We accept most PPO insurance plans; plan list number %s."),
    ("policies", "Payment", "We take cash, credit cards and debit cards; terminal %s."),
    ("policies", "Pets", "Service animals are welcome; other pets stay outside, rule %s."),
    ("policies", "Late arrival", "Arrive more than 15 minutes late and we may reschedule; policy %s."),
    ("services", "Cleaning price", "A cleaning costs %s dollars and takes an hour."),
    ("services", "Haircut price", "A haircut costs %s dollars, wash and style included."),
    ("services", "Massage", "A massage lasts 60 or 90 minutes and starts at %s dollars."),
    ("services", "Whitening price", "Whitening costs %s dollars per session."),
    ("services", "Children", "We see children from age 3; kids visits cost %s dollars."),
    ("faq", "Walk-ins", "We work by appointment, but walk-ins are welcome when a chair is free (%s)."),
    ("faq", "Wifi", "Free wifi for customers; the password is on the desk, network %s."),
    ("faq", "Gift cards", "Gift cards are sold at the front desk from %s dollars."),
]

CONFIG_POLICIES = {"escalation_phone": "+15550100999", "lead_time_minutes": 60, "buffer_minutes": 5}

# The data set, built with set-based SQL. $1 is the number of organisations everywhere it appears.
ORGANIZATIONS = """insert into organizations (name, slug, default_timezone)
    select 'Org ' || i, 'org-' || i, 'America/New_York' from generate_series(1, $1::int) i"""
LOCATIONS = """insert into locations (organization_id, slug, name, timezone, phone_number, address_line1,
        city, region, postal_code)
    select o.id, 'loc-' || n, o.name || ' ' || n,
           (array['America/New_York', 'America/Chicago', 'America/Denver',
                  'America/Los_Angeles'])[1 + (row_number() over () % 4)::int],
           '+1555' || lpad((row_number() over ())::text, 7, '0'), '1 Main Street', 'Springfield', 'NY',
           '10001'
      from organizations o, generate_series(1, 2) n"""
HOURS = """insert into business_hours (location_id, day_of_week, opens_at, closes_at)
    select l.id, d, h.o, h.c from locations l, generate_series(1, 5) d,
           (values ('09:00'::time, '12:30'::time), ('13:30', '17:30')) h(o, c)
    union all select l.id, 6, '09:00', '13:00' from locations l"""
SERVICES = """insert into services (organization_id, name, duration_minutes, price)
    select o.id, s.name, s.minutes, s.price from organizations o,
           (values ('Cleaning', 60, 120), ('Exam', 30, 90), ('Whitening', 90, 350), ('Filling', 60, 180),
                   ('Checkup', 30, 80)) s(name, minutes, price)"""
PROVIDERS = """insert into providers (organization_id, location_id, name)
    select l.organization_id, l.id, 'Provider ' || n from locations l, generate_series(1, 2) n"""
PROVIDER_SERVICES = """insert into provider_services (organization_id, provider_id, service_id)
    select p.organization_id, p.id, s.id from providers p join services s using (organization_id)"""
# $1 facts per organisation, $2..$4 the templates; one fact in five belongs to a location.
FACTS = """insert into knowledge_base (organization_id, location_id, category, title, content, tags, priority)
    with t as (select $2::kb_category[] as categories, $3::text[] as titles, $4::text[] as bodies)
    select o.id, case when f % 5 = 0 then l.id end, t.categories[1 + f % cardinality(t.titles)],
           t.titles[1 + f % cardinality(t.titles)], format(t.bodies[1 + f % cardinality(t.titles)], o.rn + f),
           array[lower(t.titles[1 + f % cardinality(t.titles)])], (f * 7) % 100
      from t, (select id, row_number() over (order by id) as rn from organizations) o
      join lateral (select id from locations where organization_id = o.id order by id limit 1) l on true,
           generate_series(1, $1::int) f"""
CONFIGS = """insert into agent_configs (organization_id, location_id, version, instructions, greeting,
        policies, is_active)
    select o.id, null, v, 'Instructions v' || v, 'Hello from ' || o.name, $1::jsonb, v = 3
      from organizations o, generate_series(1, 3) v
    union all
    select l.organization_id, l.id, v, 'Override v' || v, 'Hello from ' || l.name, '{}'::jsonb, v = 2
      from (select *, row_number() over (order by id) as rn from locations) l, generate_series(1, 2) v
     where l.rn % 5 = 0"""
# Thirteen one-hour appointments per provider on consecutive days; codes are i in base 31.
APPOINTMENTS = """insert into appointments (organization_id, location_id, service_id, provider_id,
        customer_name, customer_phone, starts_at, ends_at, confirmation_code)
    select p.organization_id, p.location_id, s.id, p.id, 'Customer', '+15550101234',
           timestamptz '2026-09-01 14:00Z' + g.j * interval '1 day',
           timestamptz '2026-09-01 15:00Z' + g.j * interval '1 day',
           (select string_agg(substr('ABCDEFGHJKMNPQRSTUVWXYZ23456789',
                                     1 + ((g.i / power(31, k)::bigint) % 31)::int, 1), '' order by k)
              from generate_series(0, 5) k)
      from (select *, row_number() over (order by id) - 1 as pn from providers) p
      join services s on s.organization_id = p.organization_id and s.name = 'Cleaning'
     cross join lateral (select j, p.pn * 13 + j as i from generate_series(0, 12) j) g"""


def steps(orgs: int, facts_per_org: int) -> list[tuple[str, str, tuple]]:
    """(label, statement, arguments) in the order they must run."""
    categories, titles, bodies = (list(column) for column in zip(*TEMPLATES, strict=True))
    return [
        ("organizations", ORGANIZATIONS, (orgs,)), ("locations", LOCATIONS, ()),
        ("business hours", HOURS, ()), ("services", SERVICES, ()), ("providers", PROVIDERS, ()),
        ("provider services", PROVIDER_SERVICES, ()),
        ("knowledge base", FACTS, (facts_per_org, categories, titles, bodies)),
        ("agent configs", CONFIGS, (CONFIG_POLICIES,)), ("background appointments", APPOINTMENTS, ()),
    ]


async def busy_provider(conn: asyncpg.Connection, month_start: date) -> tuple:
    """The first location's first provider, with four one-hour appointments every weekday of the
    month (9, 10, 14, 16 local): most of the day is taken."""
    row = await conn.fetchrow("""select p.id, p.location_id, p.organization_id, l.timezone,
        (select id from services where organization_id = p.organization_id and name = 'Exam') as service_id
        from providers p join locations l on l.id = p.location_id order by l.phone_number, p.name limit 1""")
    tz, rows = ZoneInfo(row["timezone"]), []
    for offset in range(31):
        day = month_start + timedelta(days=offset)
        if day.isoweekday() > 5:
            continue
        for hour in (9, 10, 14, 16):
            start = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
            rows.append((start, start + timedelta(hours=1), new_confirmation_code()))
    await conn.executemany("""insert into appointments (organization_id, location_id, service_id, provider_id,
        customer_name, customer_phone, starts_at, ends_at, confirmation_code)
        values ($1, $2, $3, $4, 'Busy', '+15550109999', $5, $6, $7)""",
        [(row["organization_id"], row["location_id"], row["service_id"], row["id"], *r) for r in rows])
    return row, len(rows)


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(min(50, n)):  # warm the statement cache and the buffers
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def build(conn: asyncpg.Connection, orgs: int, facts_per_org: int) -> None:
    for label, statement, arguments in steps(orgs, facts_per_org):
        start = time.perf_counter()
        await conn.execute(statement, *arguments)
        print(f"built {label} in {time.perf_counter() - start:.1f} s", flush=True)
    await conn.execute("analyze")


async def measure(conn: asyncpg.Connection, iterations: int) -> dict[str, list[float]]:
    rng = random.Random(7)
    orgs = await conn.fetch("select organization_id, array_agg(id) as locations from locations group by 1")
    all_locations = [loc for o in orgs for loc in o["locations"]]
    month = date(2026, 12, 1)
    busy, busy_count = await busy_provider(conn, month)
    print(f"busy provider: {busy_count} appointments in {month:%B %Y}")

    async def kb():
        org = rng.choice(orgs)
        location = rng.choice([*org["locations"], None])
        await knowledge.search(conn, organization_id=org["organization_id"], location_id=location,
                               query=rng.choice(QUESTIONS))

    async def config():
        assert await configs.active_config(conn, location_id=rng.choice(all_locations)) is not None

    async def slots():
        first = month + timedelta(days=rng.randrange(0, 24))
        await available_slots(conn, location_id=busy["location_id"], service_id=busy["service_id"],
                              provider_id=busy["id"], start_date=first, end_date=first + timedelta(days=6),
                              rules=BookingRules(lead_time_minutes=60, max_days_ahead=90),
                              now=datetime(2026, 11, 25, tzinfo=UTC))

    return {"kb_search": await timed(iterations, kb), "config_lookup": await timed(iterations, config),
            "slot_search": await timed(max(100, iterations // 4), slots)}


COUNTS = ["organizations", "locations", "business_hours", "services", "providers", "knowledge_base",
          "agent_configs", "appointments"]


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await build(conn, args.orgs, args.facts_per_org)
        results = await measure(conn, args.iterations)
        counts = {t: await conn.fetchval(f"select count(*) from {t}") for t in COUNTS}
    finally:
        await conn.close()
    for table, count in counts.items():
        print(f"rows_{table}={count}")
    for name, samples in results.items():
        print(f"{name}_n={len(samples)}")
        print(f"{name}_p50_ms={statistics.median(samples):.3f}")
        print(f"{name}_p99_ms={p(samples, 99):.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--facts-per-org", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    async with scratch_database("bench-lookups") as dsn:
        await run(dsn, args)
    print(f"wall_s={time.perf_counter() - started:.1f}")
    # These machines are shared: a p99 means little without the load it was measured under.
    print(f"loadavg_1m={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
