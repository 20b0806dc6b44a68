"""Error translation at the repository boundary: every public repository function is marked, and
each kind of driver error comes out as ours, with the message its module registered."""

from __future__ import annotations

import asyncio
import inspect
import uuid

import asyncpg
import pytest

from db import errors
from db.demo import seed
from db.desk import catalog, configs, locations, organizations, phone, slots
from db.desk.confirmation_codes import normalize_code
from db.desk.locations import Address
from db.errors import Conflict, DatabaseError, DomainError, InvalidInput, NotFound, Unavailable
from db.pool import connect
from tests.clock import monday
from tests.repository_modules import repository_modules

ADDRESS = Address(line1="1 Main Street", city="Springfield", region="NY", postal_code="10001")


def public_repository_functions() -> dict[str, object]:
    """Public async functions that take a connection, of every module of db.calls and db.desk."""
    found = {}
    for module in repository_modules():
        for name, function in vars(module).items():
            if (not name.startswith("_") and inspect.iscoroutinefunction(function)
                    and function.__module__ == module.__name__
                    and "conn" in inspect.signature(function).parameters):
                found[f"{module.__name__}.{name}"] = function
    found["db.demo.seed.seed_demo"] = seed.seed_demo
    return found


def test_every_public_repository_function_translates_driver_errors():
    functions = public_repository_functions()
    assert len(functions) > 40 and "db.desk.appointments.book" in functions
    assert [name for name, function in functions.items() if not errors.translates_errors(function)] == []


def test_a_constraint_registered_twice_must_mean_the_same_error():
    errors.constraints({"organizations_slug_key": organizations.CONSTRAINTS["organizations_slug_key"]})
    with pytest.raises(ValueError, match="organizations_slug_key"):
        errors.constraints({"organizations_slug_key": (InvalidInput, "something else")})


@pytest.mark.db
async def test_a_unique_violation_is_a_conflict_with_its_modules_message(conn):
    await organizations.create_organization(conn, name="Acme", slug="acme")
    with pytest.raises(Conflict, match="an organisation with this slug already exists") as caught:
        await organizations.create_organization(conn, name="Acme again", slug="acme")
    assert isinstance(caught.value.__cause__, asyncpg.UniqueViolationError)


@pytest.mark.db
async def test_a_foreign_key_violation_is_not_found(conn):
    with pytest.raises(NotFound, match="no organisation with this id"):
        await locations.create_location(conn, organization_id=uuid.uuid4(), slug="x", name="X",
                                        timezone="America/New_York", address=ADDRESS)


@pytest.mark.db
async def test_a_check_violation_is_invalid_input(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    with pytest.raises(InvalidInput, match="a service lasts between 5 minutes and 12 hours"):
        await catalog.create_service(conn, organization_id=org.id, name="Blink", duration_minutes=1)


@pytest.mark.db
async def test_a_value_the_driver_cannot_send_is_invalid_input_not_an_outage(conn):
    with pytest.raises(InvalidInput):
        await organizations.get_organization(conn, id="not-a-uuid")  # type: ignore[arg-type]


@pytest.mark.db
async def test_a_connection_lost_mid_query_is_unavailable(db_dsn, conn):
    """The server ends our session while a repository function waits on a row lock."""
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    other = await connect(db_dsn)
    try:
        async with other.transaction():
            await other.execute("select id from organizations where id = $1 for update", org.id)
            waiting = asyncio.create_task(configs.create_config(
                conn, organization_id=org.id, instructions="x", greeting="y"))
            for _ in range(500):  # until it waits for our lock (at most 5 s)
                if await other.fetchval("select wait_event_type = 'Lock' from pg_stat_activity "
                                        "where pid = $1", conn.get_server_pid()):
                    break
                await asyncio.sleep(0.01)
            await other.execute("select pg_terminate_backend($1)", conn.get_server_pid())
        with pytest.raises(Unavailable) as caught:
            await waiting
    finally:
        await other.close()
    assert errors.is_transient(caught.value)


async def test_a_query_the_client_gives_up_on_is_slow(conn):
    # asyncpg's command_timeout (the agent pool's backstop for the server's statement timeout)
    # raises TimeoutError, an OSError: it must read as "slow", not as the database being away.
    @errors.repository
    async def sleepy(connection: asyncpg.Connection) -> None:
        await connection.execute("select pg_sleep(5)", timeout=0.2)

    with pytest.raises(errors.Slow, match="did not answer in time"):
        await sleepy(conn)
    assert await conn.fetchval("select 1") == 1  # the query was cancelled; the connection lives


@pytest.mark.parametrize("refuse", [
    lambda: configs.validate_policies({"lead_time_minutes": -1}),
    lambda: configs.validate_policies({"escalation_phone": "anonymous"}),
    lambda: normalize_code("0OIL1"),
    lambda: phone.require_phone("100"),
    lambda: slots.check_window(monday(9).replace(tzinfo=None), rules=slots.BookingRules(), now=monday(8)),
    lambda: slots.check_window(monday(7), rules=slots.BookingRules(), now=monday(8)),
])
def test_pure_rules_refuse_with_a_domain_error_not_a_database_error(refuse):
    with pytest.raises(DomainError) as caught:
        refuse()
    assert not isinstance(caught.value, DatabaseError)
