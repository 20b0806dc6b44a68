"""Row level security as a signed-in user meets it: a real LOGIN role that is not a superuser,
switched to `authenticated` (or `anon`) with the JWT claims PostgREST would set."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from db import ids
from db.calls import calls, events, messages, participants
from db.calls.events import Event
from db.calls.messages import Message
from db.pool import connect

pytestmark = pytest.mark.db

ADA, BOB, CARL = (uuid.UUID(f"00000000-0000-4000-8000-00000000000{n}") for n in (1, 2, 3))
ADMIN = uuid.UUID("00000000-0000-4000-8000-0000000000ad")


def as_login(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


@pytest.fixture
async def data(conn):
    """Ada's call, Bob's call (Carl took part in it) and an anonymous SIP call, each with turns."""
    await conn.executemany(
        "insert into users (id, email) values ($1, $2)",
        [(ADA, "ada@example.com"), (BOB, "bob@example.com"), (CARL, "carl@example.com")],
    )
    for sid, owner in (("RM_ada", ADA), ("RM_bob", BOB), ("RM_sip", None)):
        call = await calls.start_call(conn, session_id=sid, user_id=owner)
        await messages.append_messages(conn, messages=[
            Message(call_id=call.id, sequence_number=i, item_id=f"{sid}_{i}", role="user")
            for i in range(2)
        ])
        await events.append_events(conn, events=[
            Event(id=ids.event_id(call.id, "e"), call_id=call.id, event_type="error")
        ])
    await participants.upsert_participant(
        conn, session_id="RM_bob", participant_sid="PA_carl", identity="carl", user_id=CARL
    )
    await conn.execute(
        "insert into webhook_events (event_id, event, payload) values ('EV_1', 'room_started', '{}')"
    )
    return conn


@pytest.fixture
async def login(db_dsn, conn):
    """A LOGIN role of this test's own, member of authenticated and anon; connect(claims, role)
    opens a connection as it, switched to `role` with `claims` as request.jwt.claims."""
    name, password = f"rls_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    await conn.execute(f"create role {name} login password '{password}'")
    await conn.execute(f"grant authenticated, anon to {name}")
    opened: list[asyncpg.Connection] = []

    async def open_as(claims: dict | None, role: str = "authenticated") -> asyncpg.Connection:
        user_conn = await connect(as_login(db_dsn, name, password))
        opened.append(user_conn)
        assert not await user_conn.fetchval("select rolsuper from pg_roles where rolname = current_user")
        await user_conn.execute(f"set role {role}")
        await user_conn.execute(
            "select set_config('request.jwt.claims', $1, false)", json.dumps(claims or {})
        )
        return user_conn

    yield open_as
    for user_conn in opened:
        await user_conn.close()
    await conn.execute(f"drop role {name}")


def claims_of(user: uuid.UUID, role: str | None = None) -> dict:
    claims: dict = {"sub": str(user), "role": "authenticated"}
    if role:
        claims["app_metadata"] = {"role": role}
    return claims


async def visible(conn) -> dict[str, set[str]]:
    """Session ids of the calls each table lets this connection see."""
    queries = {
        "voice_calls": "select session_id from voice_calls",
        "voice_messages": "select c.session_id from voice_messages m join voice_calls c on c.id = m.call_id",
        "call_events": "select c.session_id from call_events e join voice_calls c on c.id = e.call_id",
        "call_participants": "select c.session_id from call_participants p "
                             "join voice_calls c on c.id = p.call_id",
        "call_analytics": "select session_id from call_analytics",
    }
    return {table: {r[0] for r in await conn.fetch(q)} for table, q in queries.items()}


async def test_a_user_sees_only_their_own_calls(data, login):
    ada = await login(claims_of(ADA))
    assert await visible(ada) == {
        "voice_calls": {"RM_ada"}, "voice_messages": {"RM_ada"}, "call_events": {"RM_ada"},
        "call_participants": set(), "call_analytics": {"RM_ada"},
    }
    assert await ada.fetchval("select count(*) from voice_calls where user_id = $1", BOB) == 0
    assert await ada.fetchval(
        "select count(*) from voice_messages where call_id = $1", ids.call_id("RM_bob")) == 0
    assert [r[0] for r in await ada.fetch("select id from users")] == [ADA]
    assert await ada.fetchval("select count(*) from webhook_events") == 0


async def test_a_participant_sees_the_call_they_took_part_in(data, login):
    carl = await login(claims_of(CARL))
    assert await visible(carl) == {
        "voice_calls": {"RM_bob"}, "voice_messages": {"RM_bob"}, "call_events": {"RM_bob"},
        "call_participants": {"RM_bob"}, "call_analytics": {"RM_bob"},
    }


async def test_an_admin_sees_every_call(data, login):
    admin = await login(claims_of(ADMIN, role="admin"))
    everything = {"RM_ada", "RM_bob", "RM_sip"}
    assert await visible(admin) == {
        "voice_calls": everything, "voice_messages": everything, "call_events": everything,
        "call_participants": {"RM_bob"}, "call_analytics": everything,
    }
    assert await admin.fetchval("select count(*) from webhook_events") == 1
    assert await admin.fetchval("select count(*) from users") == 3


async def test_a_role_claim_outside_app_metadata_does_not_make_an_admin(data, login):
    # user_metadata is editable by the user on Supabase; only app_metadata counts.
    claims = {**claims_of(ADA), "user_metadata": {"role": "admin"}, "role": "admin"}
    ada = await login(claims)
    assert (await visible(ada))["voice_calls"] == {"RM_ada"}


async def test_signed_in_without_a_subject_sees_nothing(data, login):
    nobody = await login({"role": "authenticated"})
    assert set().union(*(await visible(nobody)).values()) == set()


async def test_anon_sees_nothing(data, login, conn):
    anon = await login(None, role="anon")
    # Plain Postgres: anon has no grant at all.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await anon.fetch("select * from voice_calls")
    # Supabase grants anon select on public tables by default; RLS must still show nothing.
    await conn.execute("grant select on all tables in schema public to anon")
    tables = ("users", "voice_calls", "call_participants", "voice_messages", "call_events",
              "call_analyses", "webhook_events", "call_analytics", "active_calls_summary")
    counts = {t: await anon.fetchval(f"select count(*) from {t}") for t in tables}
    assert counts == dict.fromkeys(tables, 0)


async def test_a_user_cannot_write_calls_of_someone_else(data, login):
    ada = await login(claims_of(ADA))
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await ada.execute("insert into voice_calls (session_id, user_id) values ('RM_forged', $1)", BOB)
    update = "update voice_calls set outcome = 'changed' where session_id = $1"
    assert await ada.execute(update, "RM_bob") == "UPDATE 0"
    assert await ada.execute(update, "RM_ada") == "UPDATE 1"
