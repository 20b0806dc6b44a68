"""Who may read or change an appointment (db.desk.identity: code and name), what one call may do
(db.desk.call_limits), and that an appointment which has started stays as it is."""

from __future__ import annotations

import contextlib

import pytest

from db.desk import appointments, identity
from db.desk.call_limits import CallLimits, TooManyBookings
from db.desk.configs import InvalidPolicy, validate_policies
from db.desk.identity import IdentityLocked, IdentityRefused, name_matches, one_edit_apart
from db.desk.slots import AppointmentInPast, BookingRules
from db.errors import InvalidInput
from tests.clock import monday
from tests.frontdesk_helpers import make_shop


@pytest.mark.parametrize(("given", "on_file"), [
    ("Jane Doe", "Jane Doe"),
    ("jane doe", "JANE DOE"),  # case
    ("Jose Garcia", "José García"),  # accents, either way round
    ("JOSÉ GARCÍA", "Jose Garcia"),
    ("  Jane   Doe. ", "Jane Doe"),  # spacing and punctuation
    ("Mary-Jane O'Brien", "Mary Jane OBrien"),
    ("Jame Doe", "Jane Doe"),  # one letter wrong
    ("Jane Dow", "Jane Doe"),
    ("Jan Doe", "Jane Doe"),  # one letter missing
    ("Janne Doe", "Jane Doe"),  # one letter extra
    ("Jnae Doe", "Jane Doe"),  # two neighbours swapped
    ("Jane Doe", "Jane Marie Doe"),  # middle name left out
    ("Jane", "Jane Doe"),  # the first name alone, exact
    ("jané", "Jane Doe"),
    ("Cher", "Cher"),
    ("Chér", "Cher"),
])
def test_names_a_receptionist_would_accept(given, on_file):
    assert name_matches(given, on_file)


@pytest.mark.parametrize(("given", "on_file"), [
    ("John Smith", "Jane Doe"),
    ("Jame Dow", "Jane Doe"),  # two typos, one in each word
    ("Jxnx Doe", "Jane Doe"),  # two typos in one word
    ("Li Wang", "Lu Wang"),  # a short word must be exact: another letter is another name
    ("Jame", "Jane Doe"),  # the first name alone allows no typo
    ("J", "Jane Doe"),  # an initial proves nothing
    ("Doe", "Jane Doe"),  # a last name alone is not enough
    ("Doe Jane", "Jane Doe"),  # in the order it was booked
    ("Jane Marie Doe", "Jane Doe"),  # more than was booked
    ("Jane Ann Doe", "Jane Marie Doe"),
    ("", "Jane Doe"),
    ("   ", "Jane Doe"),
    ("42", "Jane Doe"),
    ("Jane Doe", ""),
    ("Jane " + "Doe" * 100, "Jane Doe"),
])
def test_names_that_are_refused(given, on_file):
    assert not name_matches(given, on_file)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("jane", "jane", True), ("jane", "jame", True), ("jane", "jan", True), ("jan", "jane", True),
    ("jane", "ajane", True), ("jane", "jnae", True), ("jane", "ajne", True), ("jane", "jaen", True),
    ("jane", "jena", False), ("jane", "ja", False), ("jane", "xanx", False), ("", "a", True),
    ("abc", "cba", False),
])
def test_one_edit_apart(a, b, expected):
    assert one_edit_apart(a, b) is expected
    assert one_edit_apart(b, a) is expected


def _refuse(limits: CallLimits, reason: str = "name_mismatch") -> IdentityRefused:
    with pytest.raises(IdentityRefused) as caught, limits.identity_attempt():
        raise IdentityRefused(reason)
    return caught.value


def test_the_third_refused_try_locks_and_later_ones_are_refused_without_running():
    limits = CallLimits()
    with limits.identity_attempt():
        pass  # a try that succeeds does not count
    first, second, third = (_refuse(limits, reason) for reason in
                            ("unknown_code", "name_mismatch", "name_mismatch"))
    assert [type(e) for e in (first, second, third)] == [IdentityRefused, IdentityRefused, IdentityLocked]
    assert third.reason == "name_mismatch" and "transfer" in str(third)
    ran = []
    with pytest.raises(IdentityLocked) as caught, limits.identity_attempt():
        ran.append(True)
    assert ran == [] and caught.value.reason == "too_many_attempts"
    assert limits.identity_refusals == 4 and limits.identity_locked


def test_a_try_that_tested_nothing_is_not_counted():
    limits = CallLimits()
    for _ in range(5):
        with pytest.raises(InvalidInput), limits.identity_attempt():
            raise InvalidInput("no name given")
    assert limits.identity_refusals == 0 and not limits.identity_locked


def test_tries_still_running_count_against_the_limit():
    limits = CallLimits()
    _refuse(limits)
    with contextlib.ExitStack() as running:
        running.enter_context(limits.identity_attempt())
        running.enter_context(limits.identity_attempt())
        with pytest.raises(IdentityLocked), limits.identity_attempt():
            pass


def test_a_call_books_at_most_its_limit_and_a_failed_booking_is_not_counted():
    limits = CallLimits(max_bookings=2)
    with pytest.raises(ValueError), limits.booking():
        raise ValueError("the slot was taken")
    for _ in range(2):
        with limits.booking():
            pass
    with pytest.raises(TooManyBookings, match=r"one call may book \(2\)"), limits.booking():
        pass
    assert limits.bookings == 2


def test_the_booking_limit_comes_from_the_policies():
    assert CallLimits.from_policies(None).max_bookings == 3
    assert CallLimits.from_policies({"max_bookings_per_call": 1}).max_bookings == 1
    assert CallLimits.from_policies({"max_bookings_per_call": "lots"}).max_bookings == 3
    assert validate_policies({"max_bookings_per_call": 5}) == {"max_bookings_per_call": 5}
    with pytest.raises(InvalidPolicy, match="max_bookings_per_call"):
        validate_policies({"max_bookings_per_call": -1})


@pytest.mark.db
async def test_identify_needs_the_code_and_the_name_on_the_appointment(conn):
    shop = await make_shop(conn, slug="shop")
    other = await make_shop(conn, slug="other")
    booked = await appointments.book(conn, location_id=shop.location_id, service_id=shop.service_id,
                                     starts_at=monday(10), customer_name="José García",
                                     customer_phone="5550104444", now=monday(8))
    code = booked.confirmation_code
    found = await identity.identify(conn, organization_id=shop.organization_id,
                                    code=f"{code[:3].lower()} {code[3:]}", name="jose garcia")
    assert found.id == booked.id
    with pytest.raises(IdentityRefused) as caught:
        await identity.identify(conn, organization_id=shop.organization_id, code=code, name="Ann Lee")
    assert caught.value.reason == "name_mismatch"
    with pytest.raises(IdentityRefused) as caught:  # another organisation's code is unknown here
        await identity.identify(conn, organization_id=other.organization_id, code=code, name="José García")
    assert caught.value.reason == "unknown_code"
    assert str(caught.value) == identity.NO_MATCH  # the caller is not told which was wrong
    with pytest.raises(InvalidInput, match="name"):
        await identity.identify(conn, organization_id=shop.organization_id, code=code, name=" ")


@pytest.mark.db
async def test_an_appointment_that_has_started_cannot_be_moved_or_cancelled(conn):
    shop = await make_shop(conn, slug="shop")
    booked = await appointments.book(conn, location_id=shop.location_id, service_id=shop.service_id,
                                     starts_at=monday(10), customer_name="Ann Lee",
                                     customer_phone="5550104444", now=monday(8))
    with pytest.raises(AppointmentInPast):
        await appointments.reschedule(conn, appointment_id=booked.id, starts_at=monday(15),
                                      rules=BookingRules(lead_time_minutes=0), now=monday(10))
    with pytest.raises(AppointmentInPast):
        await appointments.cancel(conn, appointment_id=booked.id, now=monday(10, 30))
    after = await appointments.get_appointment(conn, appointment_id=booked.id)
    assert (after.status, after.starts_at) == ("confirmed", booked.starts_at)
    cancelled = await appointments.cancel(conn, appointment_id=booked.id, now=monday(9, 59))
    assert cancelled.status == "cancelled"
