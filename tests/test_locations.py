"""Locations: routing a dialed number to its location, validated time zones, addresses and phone
numbers."""

from __future__ import annotations

import pytest

from db.demo.seed import LOS_ANGELES_NUMBER, NEW_YORK_NUMBER, seed_demo
from db.desk import locations, organizations
from db.desk.locations import Address
from db.desk.phone import InvalidPhone
from db.errors import Conflict, InvalidInput

pytestmark = pytest.mark.db

ADDRESS = Address(line1="1 Main Street", city="Springfield", region="NY", postal_code="10001")


async def test_a_dialed_number_in_any_format_finds_its_location(conn):
    demo = await seed_demo(conn)
    for dialed in (NEW_YORK_NUMBER, "(555) 010-0100", "1-555-010-0100"):
        found = await locations.find_location_by_number(conn, phone_number=dialed)
        assert found is not None and found.id == demo.midtown_location_id
        assert found.timezone == "America/New_York"
    santa_monica = await locations.find_location_by_number(conn, phone_number=LOS_ANGELES_NUMBER)
    assert santa_monica.id == demo.santa_monica_location_id
    assert santa_monica.tz.key == "America/Los_Angeles"
    assert await locations.find_location_by_number(conn, phone_number="+15550109999") is None
    for not_a_number in ("anonymous", "100", "sip:100@pbx", "9" * 200):
        assert await locations.find_location_by_number(conn, phone_number=not_a_number) is None


async def test_a_location_reads_its_national_number_in_its_own_country(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    london = await locations.create_location(
        conn, organization_id=org.id, slug="london", name="London", timezone="Europe/London",
        phone_number="020 7946 0958 ext. 3",
        address=Address(line1="1 High St", city="London", postal_code="SW1A 1AA", country="GB"))
    assert london.phone_number == "+442079460958"
    with pytest.raises(InvalidPhone):
        await locations.create_location(conn, organization_id=org.id, slug="x", name="X",
                                        timezone="America/New_York", address=ADDRESS, phone_number="100")


async def test_a_number_belongs_to_one_active_location_and_moves_when_it_closes(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    first = await locations.create_location(
        conn, organization_id=org.id, slug="first", name="First", timezone="America/Chicago",
        phone_number="555 010 0300", address=ADDRESS)
    assert first.phone_number == "+15550100300"
    with pytest.raises(Conflict, match="another active location"):
        await locations.create_location(
            conn, organization_id=org.id, slug="second", name="Second", timezone="America/Chicago",
            phone_number="+15550100300", address=ADDRESS)
    await conn.execute("update locations set is_active = false where id = $1", first.id)
    assert await locations.find_location_by_number(conn, phone_number="+15550100300") is None
    second = await locations.create_location(
        conn, organization_id=org.id, slug="second", name="Second", timezone="America/Chicago",
        phone_number="+15550100300", address=ADDRESS)
    found = await locations.find_location_by_number(conn, phone_number="5550100300")
    assert found.id == second.id


async def test_unknown_or_misspelt_time_zones_are_refused(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    for timezone in ("Mars/Olympus_Mons", "america/new_york", "EST5EDT_", "", "+05:00"):
        with pytest.raises(InvalidInput, match="time zone"):
            await locations.create_location(conn, organization_id=org.id, slug="x", name="X",
                                            timezone=timezone, address=ADDRESS)
    with pytest.raises(InvalidInput, match="time zone"):
        await organizations.create_organization(conn, name="B", slug="b", default_timezone="Europe/Lisboa")


async def test_changing_a_location_to_an_unknown_time_zone_is_refused(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    location = await locations.create_location(conn, organization_id=org.id, slug="x", name="X",
                                               timezone="Europe/Paris", address=ADDRESS)
    await conn.execute("update locations set name = 'Y' where id = $1", location.id)
    with pytest.raises(Exception, match="unknown time zone"):
        await conn.execute("update locations set timezone = 'Europe/Pariss' where id = $1", location.id)


INVALID_ADDRESSES = [
    (Address(line1=" ", city="Springfield", region="NY", postal_code="10001"), "first line"),
    (Address(line1="1 Main", city="", region="NY", postal_code="10001"), "city"),
    (Address(line1="1 Main", city="Springfield", region="NY", postal_code="1000"), "postal code"),
    (Address(line1="1 Main", city="Springfield", region="NY", postal_code=None), "postal code"),
    (Address(line1="1 Main", city="Springfield", region="New York", postal_code="10001"), "state"),
    (Address(line1="1 Main", city="Springfield", postal_code="10001", country="USA"), "two-letter"),
    (Address(line1="1 Main", city="Toronto", region="ON", postal_code="12345", country="CA"), "postal code"),
]


async def test_addresses_are_validated(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    for address, message in INVALID_ADDRESSES:
        with pytest.raises(InvalidInput, match=message):
            await locations.create_location(conn, organization_id=org.id, slug="x", name="X",
                                            timezone="America/New_York", address=address)


async def test_addresses_are_tidied_before_they_are_stored(conn):
    org = await organizations.create_organization(conn, name="Acme", slug="acme")
    location = await locations.create_location(
        conn, organization_id=org.id, slug="x", name="X", timezone="America/Toronto",
        address=Address(line1="  100  King St W ", city="Toronto", region="on", postal_code="m5x 1a9",
                        country="ca"), phone_number="416 555 0199")
    assert location.address == Address(line1="100 King St W", city="Toronto", region="ON",
                                       postal_code="M5X 1A9", country="CA")
    assert location.phone_number == "+14165550199"
    assert location.address.one_line() == "100 King St W, Toronto, ON M5X 1A9"
