"""A participant's kind and a phone caller's numbers, read the same way from the agent's live
participants (livekit.rtc) and the webhook service's ParticipantInfo (db/calls/sip.py)."""

from __future__ import annotations

from types import SimpleNamespace

from livekit import rtc
from livekit.protocol.models import ParticipantInfo

from agent.call import Caller
from db.calls import sip
from webhooks import fields

PHONE = {"sip.phoneNumber": "+12125550143", "sip.trunkPhoneNumber": "+15550100100",
         "sip.callID": "SCL_abc"}


def test_both_enums_name_kinds_alike_though_they_number_them_differently():
    for name in ("STANDARD", "SIP", "AGENT", "CONNECTOR"):
        from_sdk = sip.kind_name(rtc.ParticipantKind, rtc.ParticipantKind.Value(f"PARTICIPANT_KIND_{name}"))
        from_server = sip.kind_name(ParticipantInfo.Kind, ParticipantInfo.Kind.Value(name))
        assert from_sdk == from_server == name.lower()


def test_a_kind_newer_than_our_protocol_is_named_not_refused():
    assert sip.kind_name(ParticipantInfo.Kind, 99) == "unknown_99"


def test_only_a_sip_participant_has_numbers():
    assert sip.sip_numbers("sip", PHONE) == sip.SipNumbers("+12125550143", "+15550100100", "SCL_abc")
    assert sip.sip_numbers("standard", PHONE) == sip.SipNumbers()
    assert sip.sip_numbers("sip", {"sip.phoneNumber": ""}).given() == {}


def test_the_agent_and_the_webhooks_read_the_same_phone_caller():
    live = SimpleNamespace(identity="sip_1", sid="PA_1", name="", attributes=PHONE,
                           kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    info = ParticipantInfo(identity="sip_1", sid="PA_1", kind=ParticipantInfo.Kind.SIP, attributes=PHONE)
    caller = Caller.from_participant(live)
    assert caller.is_sip and caller.name is None
    assert sip.sip_numbers(fields.kind(info), info.attributes).given() == {
        "caller_number": caller.number, "dialed_number": caller.dialed_number,
        "sip_call_id": caller.sip_call_id}
    web = SimpleNamespace(identity="web", sid="PA_2", name="Ann", attributes=PHONE,
                          kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)
    assert not Caller.from_participant(web).is_sip and Caller.from_participant(web).number is None
