"""The API audits as its key's service member (issue 16's audit_log, sql/0017): a configuration
activated and every read of a call's detail write a row naming that member; under RLS a member
writes rows only for its own organisation and in its own name, and reads no one else's."""

from __future__ import annotations

import asyncpg
import pytest

from api.auth import ACT_AS, claims
from db import apikeys, audit
from db.errors import DatabaseError
from db.pool import connect
from tests.api.conftest import client

pytestmark = pytest.mark.db

ROWS_OF = """
select actor, action, organization_id, subject, row_count from audit_log
 where action = $1 and actor = $2 order by id
"""


async def _key(conn, secret: str) -> apikeys.ApiKey:
    return await apikeys.find_key(conn, secret=secret)


async def _rows_of(world, key_name: str, action: str) -> list:
    """The audit rows of `action` naming the service member of one of the world's keys."""
    conn = await connect(world.dsn)
    try:
        key = await _key(conn, world.keys[key_name])
        return await conn.fetch(ROWS_OF, action, f"member:{key.user_id}")
    finally:
        await conn.close()


async def test_activating_a_configuration_is_audited_as_the_keys_member(api_server, world):
    with client(api_server, world.keys["write"]) as c:
        versions = c.get("/v1/configs").json()
        older = next(v for v in versions if not v["is_active"] and v["location_id"] is None)
        assert c.post(f"/v1/configs/{older['id']}/activate").status_code == 200
    rows = await _rows_of(world, "write", audit.CONFIG_ACTIVATION)
    assert [(r["subject"], r["organization_id"], r["row_count"]) for r in rows] == [
        (older["id"], world.tenant.organization_id, 1)]


async def test_each_read_of_a_calls_detail_is_audited_and_lists_are_not(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        assert c.get("/v1/calls").status_code == 200
        assert c.get(f"/v1/calls/{world.demo_call_id}").status_code == 200
        assert c.get(f"/v1/calls/{world.demo_call_id}").status_code == 200
        assert c.get(f"/v1/calls/{world.other_call_id}").status_code == 404
    rows = await _rows_of(world, "read", audit.CALL_READ)
    assert [(r["subject"], r["organization_id"]) for r in rows] == [
        (f"call:{world.demo_call_id}", world.tenant.organization_id)] * 2


async def test_a_member_writes_only_its_own_rows_and_reads_no_other_organisations(world):
    conn = await connect(world.dsn)
    try:
        reader, other = await _key(conn, world.keys["read"]), await _key(conn, world.keys["other"])
        async with conn.transaction():  # the other organisation's admin audits something
            await conn.execute(ACT_AS, claims(other))
            await audit.record(conn, actor=f"member:{other.user_id}", action=audit.EXPORT,
                               organization_id=other.organization_id, subject="run:x")
        actor = f"member:{reader.user_id}"
        for organization_id, name in [(other.organization_id, actor),
                                      (reader.organization_id, "system"),
                                      (reader.organization_id, f"member:{other.user_id}")]:
            with pytest.raises(DatabaseError, match="row-level security"):
                async with conn.transaction():
                    await conn.execute(ACT_AS, claims(reader))
                    await audit.record(conn, actor=name, action=audit.EXPORT,
                                       organization_id=organization_id)
        async with conn.transaction():
            await conn.execute(ACT_AS, claims(reader))
            written = await audit.record(conn, actor=actor, action=audit.EXPORT,
                                         organization_id=reader.organization_id, subject="run:y")
            seen = await audit.recent(conn)
        for change in ("update audit_log set row_count = 5", "delete from audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # append-only
                async with conn.transaction():
                    await conn.execute(ACT_AS, claims(reader))
                    await conn.execute(change)
        async with conn.transaction():
            await conn.execute(ACT_AS, claims(other))
            seen_by_other = await audit.recent(conn, action=audit.EXPORT)
    finally:
        await conn.close()
    assert written.actor == actor
    # A staff member (a read key) sees its own rows only: not the other organisation's.
    assert {e.organization_id for e in seen} == {reader.organization_id}
    assert all(e.actor == actor for e in seen)
    assert [e.subject for e in seen_by_other] == ["run:x"]
