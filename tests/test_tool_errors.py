"""Tools tell the caller something sayable when Postgres is away, whichever layer noticed."""

from datetime import UTC, datetime

import asyncpg
import pytest
from livekit.agents import ToolError

from agent.tools._common import speakable_errors
from db.desk.configs import InvalidPolicy
from db.desk.confirmation_codes import InvalidCode
from db.desk.phone import InvalidPhone
from db.desk.slots import SlotTaken, TooSoon
from db.errors import Slow, Unavailable


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),  # pool.acquire()
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    Unavailable("the database is unavailable"),  # a repository's translated error
])
def test_database_outage_in_a_tool_becomes_a_sayable_tool_error(error):
    with pytest.raises(ToolError, match="not answering"), speakable_errors():
        raise error


def test_a_driver_error_that_is_not_an_outage_is_not_disguised_as_one():
    with pytest.raises(asyncpg.UndefinedTableError), speakable_errors():
        raise asyncpg.UndefinedTableError("relation does not exist")


@pytest.mark.parametrize("error, message", [
    (TooSoon("that time is in the past"), "in the past"),
    (InvalidPhone("that is not a phone number we could call back"), "call back"),
    (InvalidCode("a confirmation code is 6 letters and digits"), "6 letters"),
    (InvalidPolicy("policy lead_time_minutes must be a whole number"), "whole number"),
    (SlotTaken(starts_at=datetime(2030, 1, 7, 15, tzinfo=UTC), timezone="America/New_York"),
     "Monday January 7 at 10:00 AM is no longer available"),
])
def test_a_refusal_by_a_domain_rule_or_the_database_is_passed_on_to_the_caller(error, message):
    with pytest.raises(ToolError, match=message), speakable_errors():
        raise error


@pytest.mark.parametrize("error", [
    asyncpg.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
    asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),  # 55P03
    Slow("the database is slow"),  # a repository's translated error
])
def test_a_timed_out_query_is_spoken_as_slow_not_as_down(error):
    with pytest.raises(ToolError, match="slow right now"), speakable_errors():
        raise error
