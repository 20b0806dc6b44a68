"""Row level security of the front-desk tables between two organisations, as a signed-in user
meets it: a LOGIN role that is not a superuser, `set role authenticated`, and the JWT claims
PostgREST would set (sub = a users.id)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from db.calls import calls, lifecycle, participants
from db.demo.seed import seed_demo
from db.desk import appointments, hours, knowledge, organizations
from db.desk.slots import BookingRules
from db.errors import NotFound
from db.pool import connect
from tests.clock import monday
from tests.frontdesk_helpers import make_shop

pytestmark = pytest.mark.db

ANN, MIA, BEN, ADMIN = (uuid.UUID(f"00000000-0000-4000-8000-0000000000{n}") for n in ("a1", "a2", "b1", "ad"))
RULES = BookingRules(lead_time_minutes=0)
TABLES = ("organizations", "locations", "business_hours", "business_hour_exceptions", "services",
          "providers", "provider_services", "appointments", "knowledge_base", "agent_configs")


@pytest.fixture
async def tenants(conn):
    """Organisation A (the demo: Ann is staff, Mia a manager) and B (Ben), each with a call,
    an appointment, facts and a config."""
    await conn.executemany("insert into users (id, email) values ($1, $2)",
                           [(u, f"{u}@example.com") for u in (ANN, MIA, BEN, ADMIN)])
    demo = await seed_demo(conn)
    other = await make_shop(conn, slug="other-clinic")
    for org, user, role in ((demo.organization_id, ANN, "staff"), (demo.organization_id, MIA, "manager"),
                            (other.organization_id, BEN, "owner")):
        await organizations.add_member(conn, organization_id=org, user_id=user, role=role)
    for location_id in (demo.midtown_location_id, other.location_id):
        await hours.add_exception(conn, location_id=location_id, on_date=monday(9, days=4).date())
    await knowledge.add_fact(conn, organization_id=other.organization_id, category="faq", title="Secret",
                             content="Only B knows this.")
    await conn.execute("""insert into agent_configs (organization_id, version, instructions, greeting,
                          is_active) values ($1, 1, 'B', 'Hi from B', true)""", other.organization_id)
    for sid, org in (("RM_a", demo.organization_id), ("RM_b", other.organization_id)):
        call = await calls.start_call(conn, session_id=sid, caller_number="+15550107777")
        await conn.execute("update voice_calls set organization_id = $2 where id = $1", call.id, org)
        await participants.upsert_participant(conn, session_id=sid, participant_sid=f"PA_{sid}",
                                              identity="caller")
    await appointments.book(conn, location_id=demo.midtown_location_id, starts_at=monday(10),
                            service_id=demo.services["Dental cleaning"], customer_name="A patient",
                            customer_phone="5550107777", rules=RULES, now=monday(8))
    await appointments.book(conn, location_id=other.location_id, service_id=other.service_id,
                            starts_at=monday(10), customer_name="B patient", customer_phone="5550107777",
                            rules=RULES, now=monday(8))
    return demo.organization_id, other.organization_id


@pytest.fixture
async def signed_in(db_dsn, conn):
    """open(claims) -> a connection of a non-superuser LOGIN role, as `authenticated`, with claims."""
    name, password = f"rls_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    await conn.execute(f"create role {name} login password '{password}'")
    await conn.execute(f"grant authenticated to {name}")
    opened: list[asyncpg.Connection] = []
    parts = urlsplit(db_dsn)
    dsn = urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.netloc.rsplit('@', 1)[-1]}"))

    async def open_as(claims: dict) -> asyncpg.Connection:
        user_conn = await connect(dsn)
        opened.append(user_conn)
        assert not await user_conn.fetchval("select rolsuper from pg_roles where rolname = current_user")
        await user_conn.execute("set role authenticated")
        await user_conn.execute("select set_config('request.jwt.claims', $1, false)", json.dumps(claims))
        return user_conn

    yield open_as
    for user_conn in opened:
        await user_conn.close()
    await conn.execute(f"drop role {name}")


async def organisations_seen(user_conn) -> dict[str, set]:
    seen = {}
    for table in TABLES:
        column = "id" if table == "organizations" else "organization_id"
        if table in ("business_hours", "business_hour_exceptions"):
            query = f"select l.organization_id from {table} t join locations l on l.id = t.location_id"
        else:
            query = f"select {column} from {table}"
        seen[table] = {r[0] for r in await user_conn.fetch(query)}
    return seen


async def test_a_member_sees_only_their_organisations_rows(tenants, signed_in):
    a, b = tenants
    ann = await signed_in({"sub": str(ANN)})
    seen = await organisations_seen(ann)
    assert seen == {table: {a} for table in TABLES}
    ben = await signed_in({"sub": str(BEN)})
    assert await organisations_seen(ben) == {table: {b} for table in TABLES}


async def test_a_member_sees_the_calls_of_their_organisation_and_their_turns(tenants, signed_in):
    a, _ = tenants
    ann = await signed_in({"sub": str(ANN)})
    assert [r["session_id"] for r in await ann.fetch("select session_id from voice_calls")] == ["RM_a"]
    rows = await ann.fetch("select p.participant_sid from call_participants p")
    assert [r["participant_sid"] for r in rows] == ["PA_RM_a"]
    members = await ann.fetch("select user_id from organization_members order by user_id")
    assert [r["user_id"] for r in members] == [ANN, MIA]


async def test_staff_read_facts_but_only_managers_change_them(tenants, signed_in):
    a, b = tenants
    ann = await signed_in({"sub": str(ANN)})
    assert await ann.execute("update knowledge_base set priority = 1") == "UPDATE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await ann.execute("""insert into knowledge_base (organization_id, category, title, content)
                             values ($1, 'faq', 'x', 'y')""", a)
    mia = await signed_in({"sub": str(MIA)})
    updated = await mia.execute("update knowledge_base set priority = 1")
    assert updated == f"UPDATE {await mia.fetchval('select count(*) from knowledge_base')}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await mia.execute("""insert into knowledge_base (organization_id, category, title, content)
                             values ($1, 'faq', 'x', 'y')""", b)
    assert await mia.execute("update appointments set notes = 'seen'") == "UPDATE 1"


async def test_admins_see_every_organisation_and_strangers_none(tenants, signed_in):
    a, b = tenants
    admin = await signed_in({"sub": str(ADMIN), "app_metadata": {"role": "admin"}})
    assert await organisations_seen(admin) == {table: {a, b} for table in TABLES}
    assert await admin.fetchval("select count(*) from voice_calls") == 2
    stranger = await signed_in({"sub": str(uuid.uuid4())})
    assert await organisations_seen(stranger) == {table: set() for table in TABLES}
    assert await stranger.fetchval("select count(*) from voice_calls") == 0


RLS_REFUSED = pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security")
INSERT_CALL = """insert into voice_calls (session_id, user_id, organization_id, location_id)
                 values ($1, $2, $3, $4)"""


async def locations_of(conn, organization_id) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(
        "select id from locations where organization_id = $1 order by slug", organization_id)]


async def test_a_non_member_cannot_put_a_call_into_another_organisation(tenants, signed_in, conn):
    a, b = tenants
    ben = await signed_in({"sub": str(BEN)})
    with RLS_REFUSED:
        await ben.execute(INSERT_CALL, "RM_ben_in_a", BEN, a, None)
    await ben.execute(INSERT_CALL, "RM_ben_in_b", BEN, b, (await locations_of(conn, b))[0])
    await ben.execute("update voice_calls set organization_id = $1 where session_id = 'RM_ben_in_b'", b)
    with RLS_REFUSED:
        await ben.execute("update voice_calls set organization_id = $1, location_id = null "
                          "where session_id = 'RM_ben_in_b'", a)
    ann = await signed_in({"sub": str(ANN)})
    await ann.execute(INSERT_CALL, "RM_ann", ANN, a, (await locations_of(conn, a))[0])
    await ann.execute(INSERT_CALL, "RM_ann_private", ANN, None, None)
    rows = await conn.fetch("select session_id, organization_id from voice_calls where user_id is not null")
    assert {r["session_id"]: r["organization_id"] for r in rows} == {
        "RM_ben_in_b": b, "RM_ann": a, "RM_ann_private": None}


async def test_a_member_cannot_write_the_turns_of_another_organisations_call(tenants, signed_in, conn):
    a, _ = tenants
    call_a = await conn.fetchval("select id from voice_calls where session_id = 'RM_a'")
    ben = await signed_in({"sub": str(BEN)})
    writes = (
        "insert into call_participants (call_id, participant_sid, participant_identity)"
        " values ($1, 'PA_x', 'x')",
        "insert into voice_messages (call_id, sequence_number, item_id, role, call_created_at)"
        " values ($1, 90, 'i', 'user', call_partition_key($1))",
        "insert into call_events (id, call_id, event_type, call_created_at)"
        " values (gen_random_uuid(), $1, 'error', call_partition_key($1))",
    )
    for statement in writes:
        with RLS_REFUSED:
            await ben.execute(statement, call_a)
    for table in ("call_participants", "voice_messages", "call_events"):
        moved = await ben.execute(f"update {table} set call_id = call_id where call_id = $1", call_a)
        assert moved == "UPDATE 0"
    assert await conn.fetchval("select count(*) from voice_messages where call_id = $1", call_a) == 0


async def test_a_calls_location_belongs_to_its_organisation(tenants, signed_in, conn):
    a, b = tenants
    location_b = (await locations_of(conn, b))[0]
    ann = await signed_in({"sub": str(ANN)})
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="voice_calls_location_org_fkey"):
        await ann.execute(INSERT_CALL, "RM_ann_elsewhere", ANN, a, location_b)
    with pytest.raises(NotFound, match="organisation"):
        await lifecycle.route_to_location(conn, session_id="RM_a", location_id=location_b,
                                          organization_id=b)
    assert await lifecycle.route_to_location(conn, session_id="RM_a", organization_id=a,
                                             location_id=(await locations_of(conn, a))[0])
