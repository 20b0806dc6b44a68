"""audit_log (db/audit.py): who did what, when, to how many rows."""

from __future__ import annotations

import pytest

from db import audit
from db.demo.seed import seed_demo
from db.desk import configs
from db.errors import InvalidInput

pytestmark = pytest.mark.db


async def test_activating_and_rolling_back_a_configuration_are_audited(conn):
    demo = await seed_demo(conn)
    seeded = len(await audit.recent(conn, action=audit.CONFIG_ACTIVATION))
    await configs.rollback_config(conn, organization_id=demo.organization_id, actor="ops@example")
    await configs.activate_config(conn, config_id=demo.config_v2_id, actor="api:key-1")
    entries = await audit.recent(conn, action=audit.CONFIG_ACTIVATION)
    assert len(entries) == seeded + 2
    assert [(e.actor, e.subject, e.details["version"], e.row_count, e.organization_id)
            for e in entries[:2]] == [
        ("api:key-1", str(demo.config_v2_id), 2, 1, demo.organization_id),
        ("ops@example", str(demo.config_v1_id), 1, 1, demo.organization_id)]


async def test_an_audit_row_commits_or_rolls_back_with_the_action(conn):
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await audit.record(conn, actor="api:key-1", action=audit.CALL_READ, subject="RM_x", row_count=1)
            raise RuntimeError("the read failed")
    assert await audit.recent(conn) == []
    entry = await audit.record(conn, actor="api:key-1", action=audit.EXPORT, row_count=12,
                               details={"format": "csv"})
    assert (await audit.recent(conn))[0] == entry


@pytest.mark.parametrize(("actor", "action"), [("", "export"), ("me", "Drop Table"), ("me", "")])
async def test_an_audit_row_needs_an_actor_and_a_plain_action(conn, actor, action):
    with pytest.raises(InvalidInput):
        await audit.record(conn, actor=actor, action=action)
