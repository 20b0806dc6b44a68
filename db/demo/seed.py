"""The demo tenant: `python -m db seed --demo`, and `seed_demo(conn)` for demos and tests.

Idempotent: every row has a fixed id derived from a stable key, and every insert is
`on conflict do nothing`, so a second run creates nothing (and says so) and a run after new demo
content was added creates only the new rows. It never overwrites: a demo someone has edited (a
rolled-back config, a cancelled appointment) stays as they left it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import asyncpg

from db.demo import data
from db.demo.data import ESCALATION_NUMBER, LOS_ANGELES_NUMBER, NEW_YORK_NUMBER
from db.desk.public_holidays import holiday_names
from db.errors import repository

__all__ = ["DemoTenant", "ESCALATION_NUMBER", "LOS_ANGELES_NUMBER", "NEW_YORK_NUMBER", "demo_holidays",
           "seed_demo"]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://frontdesk.invalid/demo")


def demo_holidays(start: date, end: date) -> dict[date, str]:
    """The public holidays from `start` to `end` on which either demo location closes."""
    closed: dict[date, str] = {}
    for *_, region, _postal_code, mode in data.LOCATIONS:
        # "US": both are in the United States (the locations.country default the seed relies on).
        closed.update(holiday_names(country="US", region=region, mode=mode, start=start, end=end))
    return closed


def demo_id(key: str) -> uuid.UUID:
    """The fixed id of a demo row."""
    return uuid.uuid5(_NAMESPACE, key)


ORGANIZATION_ID = demo_id("organization")
MIDTOWN_ID = demo_id("location:midtown")
SANTA_MONICA_ID = demo_id("location:santa-monica")


@dataclass(frozen=True)
class DemoTenant:
    organization_id: uuid.UUID
    midtown_location_id: uuid.UUID
    santa_monica_location_id: uuid.UUID
    services: dict[str, uuid.UUID]
    providers: dict[str, uuid.UUID]
    config_v1_id: uuid.UUID
    config_v2_id: uuid.UUID
    created: dict[str, int] = field(default_factory=dict)

    @property
    def created_anything(self) -> bool:
        return any(self.created.values())


INSERT_ORGANIZATION = """
insert into organizations (id, name, slug, default_timezone) values ($1, $2, $3, $4)
on conflict do nothing returning id
"""
INSERT_LOCATIONS = """
insert into locations (id, organization_id, slug, name, timezone, phone_number, address_line1,
                       address_line2, city, region, postal_code, public_holidays, booking_capacity)
select id, $1, slug, name, tz, phone, line1, line2, city, region, postal, holidays, 0
  from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::text[], $10::text[], $11::text[], $12::text[])
       as t(id, slug, name, tz, phone, line1, line2, city, region, postal, holidays)
on conflict do nothing returning id
"""
INSERT_HOURS = """
insert into business_hours (id, location_id, day_of_week, opens_at, closes_at)
select * from unnest($1::uuid[], $2::uuid[], $3::smallint[], $4::time[], $5::time[])
on conflict do nothing returning id
"""
INSERT_SERVICES = """
insert into services (id, organization_id, name, duration_minutes, price, description)
select id, $1, name, minutes, price, description
  from unnest($2::uuid[], $3::text[], $4::int[], $5::numeric[], $6::text[])
       as t(id, name, minutes, price, description)
on conflict do nothing returning id
"""
INSERT_PROVIDERS = """
insert into providers (id, organization_id, location_id, name, title)
select id, $1, location_id, name, title from unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[])
       as t(id, location_id, name, title)
on conflict do nothing returning id
"""
INSERT_PROVIDER_SERVICES = """
insert into provider_services (organization_id, provider_id, service_id)
select $1, provider_id, service_id from unnest($2::uuid[], $3::uuid[]) as t(provider_id, service_id)
on conflict do nothing returning provider_id
"""
INSERT_FACTS = """
insert into knowledge_base (id, organization_id, location_id, category, topic, title, content, tags,
                            priority)
select f.id, $1, f.location_id, f.category::kb_category, f.topic, f.title, f.content,
       array(select jsonb_array_elements_text(f.tags::jsonb)), f.priority
  from unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::smallint[]) as f(id, location_id, category, topic, title, content, tags, priority)
on conflict do nothing returning id
"""
INSERT_CONFIG = """
insert into agent_configs (id, organization_id, version, label, instructions, greeting, script_overrides,
                           policies, stt_model, llm_model, tts_model, tts_voice, is_active, activated_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, case when $13 then now() end)
on conflict do nothing returning id
"""


def _columns(rows: list[tuple]) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)]


async def _organization_and_locations(conn: asyncpg.Connection) -> dict[str, int]:
    org = data.ORGANIZATION
    created_org = await conn.fetch(INSERT_ORGANIZATION, ORGANIZATION_ID, org["name"], org["slug"],
                                   org["timezone"])
    rows = [(demo_id(f"location:{key}"), *rest) for key, *rest in data.LOCATIONS]
    created = await conn.fetch(INSERT_LOCATIONS, ORGANIZATION_ID, *_columns(rows))
    hours = [(demo_id(f"hours:{key}:{d}:{o}"), demo_id(f"location:{key}"), d, o, c)
             for key, intervals in data.HOURS.items() for d, o, c in intervals]
    created_hours = await conn.fetch(INSERT_HOURS, *_columns(hours))
    return {"organizations": len(created_org), "locations": len(created),
            "business hours": len(created_hours)}


async def _catalog(conn: asyncpg.Connection) -> dict[str, int]:
    services = [(demo_id(f"service:{name}"), name, minutes, Decimal(price), description)
                for name, minutes, price, description in data.SERVICES]
    created_services = await conn.fetch(INSERT_SERVICES, ORGANIZATION_ID, *_columns(services))
    providers = [(demo_id(f"provider:{name}"), demo_id(f"location:{key}"), name, title)
                 for name, title, key, _ in data.PROVIDERS]
    created_providers = await conn.fetch(INSERT_PROVIDERS, ORGANIZATION_ID, *_columns(providers))
    links = [(demo_id(f"provider:{name}"), demo_id(f"service:{service}"))
             for name, _, _, performs in data.PROVIDERS for service in performs]
    await conn.fetch(INSERT_PROVIDER_SERVICES, ORGANIZATION_ID, *_columns(links))
    return {"services": len(created_services), "providers": len(created_providers)}


async def _facts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = [(demo_id(f"fact:{key or 'org'}:{topic}"), demo_id(f"location:{key}") if key else None,
             category, topic, title, content, json.dumps(tags), priority)
            for category, key, topic, title, content, tags, priority in data.FACTS]
    created = await conn.fetch(INSERT_FACTS, ORGANIZATION_ID, *_columns(rows))
    return {"knowledge-base facts": len(created)}


async def _configs(conn: asyncpg.Connection) -> dict[str, int]:
    versions = [
        (1, "launch", data.CONFIG_INSTRUCTIONS_V1, data.GREETING_V1, {}, data.POLICIES_V1, False),
        (2, "friendlier, with buffers", data.CONFIG_INSTRUCTIONS_V2, data.GREETING_V2,
         data.SCRIPT_OVERRIDES_V2, data.POLICIES_V2, True),
    ]
    created = 0
    for version, label, instructions, greeting, overrides, policies, active in versions:
        rows = await conn.fetch(INSERT_CONFIG, demo_id(f"config:v{version}"), ORGANIZATION_ID, version,
                                label, instructions, greeting, overrides, policies, *data.MODELS.values(),
                                active)
        created += len(rows)
    return {"agent configs": created}


@repository
async def seed_demo(conn: asyncpg.Connection) -> DemoTenant:
    """Create whatever of the demo tenant is missing (in one transaction) and describe it."""
    created: dict[str, int] = {}
    async with conn.transaction():
        for step in (_organization_and_locations, _catalog, _facts, _configs):
            created.update(await step(conn))
    return DemoTenant(
        organization_id=ORGANIZATION_ID, midtown_location_id=MIDTOWN_ID,
        santa_monica_location_id=SANTA_MONICA_ID,
        services={name: demo_id(f"service:{name}") for name, *_ in data.SERVICES},
        providers={name: demo_id(f"provider:{name}") for name, *_ in data.PROVIDERS},
        config_v1_id=demo_id("config:v1"), config_v2_id=demo_id("config:v2"), created=created,
    )


def describe(tenant: DemoTenant) -> list[str]:
    """What a seed run did, one line each, for the command line."""
    if not tenant.created_anything:
        return [f"demo tenant {data.ORGANIZATION['name']!r} already present: nothing created"]
    lines = [f"{kind}: {count} created" for kind, count in tenant.created.items() if count]
    lines.append(f"organization {data.ORGANIZATION['name']} ({tenant.organization_id}); dial "
                 f"{NEW_YORK_NUMBER} (Midtown, New York) or {LOS_ANGELES_NUMBER} (Santa Monica)")
    return lines
