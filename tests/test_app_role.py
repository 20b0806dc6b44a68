"""The services run as the embedded server's application role, which is not a superuser: its
migrations, the demo seed, the recorder, the webhook service and a booking call all work on a
database it owns, with row level security applying to it as the owner (not at all)."""

from __future__ import annotations

import pytest

from agent.scripted import Step
from db.embedded_access import APP_ROLE
from db.migrate import migrate_dsn
from db.pool import create_pool
from db.recorder import Recorder
from tests.clock import local, next_open_weekday
from tests.conftest import create_database, drop_database, with_database
from tests.harness import demo_tenant, open_text_call, stored
from tests.livekit_webhooks import call_rows, check_realistic_call, post, realistic_call, webhook_client

pytestmark = [
    pytest.mark.db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


@pytest.fixture
async def app_dsn(pg_server, admin_dsn):
    """A database of this test's own, owned by the application role, and its DSN as that role."""
    if pg_server is None:
        pytest.skip("the application role is the embedded server's (DATABASE_URL is set)")
    name = await create_database(admin_dsn, prefix="app", owner=APP_ROLE)
    dsn = with_database(pg_server.dsn, name)
    assert await migrate_dsn(dsn)
    yield dsn
    await drop_database(admin_dsn, name)


async def test_the_services_run_as_the_application_role(app_dsn, tmp_path):
    pool = await create_pool(app_dsn, min_size=1, max_size=4)
    recorder = Recorder(app_dsn, spool_dir=tmp_path, name="app")
    try:
        assert not await pool.fetchval("select rolsuper from pg_roles where rolname = current_user")
        await demo_tenant(pool)
        await recorder.start()
        call = await open_text_call(pool, recorder)
        await call.say("a cleaning please", Step(calls=[("book_appointment", {
            "service": "cleaning", "start_time": local(next_open_weekday(), "10:00"),
            "customer_name": "Jane Doe"})]), Step(text="Booked."))
        await call.hang_up(recorder)
        assert await recorder.flush(10)
        report = await stored(pool, call.desk.session_id)
        assert report.call.outcome == "appointment_booked" and len(report.appointments) == 1
        async with webhook_client(pool) as client:
            for event in realistic_call().values():
                assert (await post(client, event)).status == 200
        async with pool.acquire() as conn:
            check_realistic_call(await call_rows(conn, "RM_call"), "RM_call")
    finally:
        await recorder.close()
        await pool.close()
