"""Phone numbers through libphonenumber: any usual format in, E.164 out, and None (never an
exception) for what is not a number anyone could call back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from livekit import rtc
from livekit.protocol.models import ParticipantInfo

from agent.call import Caller
from db.calls import calls, participants
from db.desk.phone import InvalidPhone, normalize_phone, require_phone
from tests.livekit_webhooks import Person, participant_event
from webhooks import effects


@pytest.mark.parametrize("raw, region, expected", [
    ("+1 (212) 555-0188 ext. 12", "US", "+12125550188"),  # E.164 has no extension: dropped
    ("(212) 555-0188", "US", "+12125550188"),
    ("212.555.0188 x7", "US", "+12125550188"),
    ("+44 20 7946 0958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("020 7946 0958", None, None),  # a national number without a region to read it in
    ("011 44 20 7946 0958", "US", "+442079460958"),
    ("0044 20 7946 0958", "GB", "+442079460958"),
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("tel:+1-555-010-0100", "US", "+15550100100"),
    ("sip:+12125550188@pbx.example.com", "US", "+12125550188"),
    ("555-010-0100", "US", "+15550100100"),  # fictional 555-01xx: well formed, so accepted
    ("anonymous", "US", None),
    ("restricted", "US", None),
    ("100", "US", None),  # a PBX extension
    ("sip:100@pbx", "US", None),
    ("911", "US", None),  # a short code
    ("12345", "US", None),
    ("555-0100", "US", None),  # local only: no area code
    ("+1 555 010 01000", "US", None),  # one digit too many
    ("call me maybe", "US", None),
    ("+0 555 010 0100", "US", None),
    ("", "US", None),
    (None, "US", None),
    ("9" * 200, "US", None),
    ("2125550188", "XX", None),  # an unknown region
])
def test_numbers_normalise_to_e164_or_to_unknown(raw, region, expected):
    assert normalize_phone(raw, region=region) == expected


@pytest.mark.parametrize("raw", [
    "+1 (555) 010-0100", "555-010-0100", "15550100100", "(555) 010 0100", "555.010.0100",
    "+15550100100", "tel:+1-555-010-0100", "1 555 010 0100", " 5550100100 ",
])
def test_us_numbers_in_any_usual_format_are_one_number(raw):
    assert normalize_phone(raw) == "+15550100100"


def test_a_required_number_that_is_not_one_is_refused():
    assert require_phone("(212) 555-0188") == "+12125550188"
    for raw in ("anonymous", "100", "", None):
        with pytest.raises(InvalidPhone, match="area code"):
            require_phone(raw)


def test_the_agent_reads_a_withheld_caller_id_as_no_number():
    def sip_participant(number: str) -> SimpleNamespace:
        return SimpleNamespace(identity="sip_x", sid="PA_x", name="",
                               kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
                               attributes={"sip.phoneNumber": number,
                                           "sip.trunkPhoneNumber": "(555) 010-0100"})

    withheld = Caller.from_participant(sip_participant("anonymous"))
    assert (withheld.number, withheld.dialed_number, withheld.is_sip) == (None, "+15550100100", True)
    assert Caller.from_participant(sip_participant("212 555 0188")).number == "+12125550188"


@pytest.mark.db
async def test_a_webhook_with_a_caller_id_that_is_not_a_number_stores_null(conn):
    caller = Person("PA_anon", "sip_anonymous", ParticipantInfo.Kind.SIP, 1, attributes={
        "sip.phoneNumber": "anonymous", "sip.trunkPhoneNumber": "sip:100@pbx", "sip.callID": "SCL_1"})
    event = participant_event("participant_joined", "RM_anon", 1, caller)
    async with conn.transaction():
        assert await effects.record(conn, event, body="{}") == "applied"
    call = await calls.get_call(conn, session_id="RM_anon")
    assert (call.caller_number, call.dialed_number, call.sip_call_id) == (None, None, "SCL_1")
    [stored] = await participants.list_participants(conn, session_id="RM_anon")
    assert stored.attributes["sip.phoneNumber"] == "anonymous"  # what the trunk sent is kept
