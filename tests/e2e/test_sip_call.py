"""Phone calls through LiveKit's SIP bridge: sipp dials the Midtown number over a trunk and a
dispatch rule created with livekit-api, and streams synthesised speech as G.711.

Needs livekit-sip (LIVEKIT_SIP_BIN or .ci/build-servers.sh), redis-server and sipp; without them
every test here skips, naming what is missing. The sipp scenarios (tests/e2e/sipp/) were checked
against a sipp stand-in for the bridge (INVITE/200/ACK, REFER/202/NOTIFY/200, BYE/200); the
tests themselves have not run against livekit-sip on this machine, whose Go module proxy refuses
github.com/livekit/sip."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from livekit import api

from db.calls.report import CallReport
from db.demo.seed import ESCALATION_NUMBER, NEW_YORK_NUMBER
from db.desk import locations
from tests.e2e.audio import RATE, resample, speak_pcm, ulaw_encode, write_ulaw_wav
from tests.e2e.caller import CALLER_VOICE, CALLER_WPM
from tests.e2e.calls import poll, settled_report
from tests.e2e.conftest import register_stack, skip_reason, unregister_stack
from tests.e2e.conversation import ASK_FOR_A_PERSON, ASK_TO_HANG_UP, CALLER_LINES, QUESTION
from tests.e2e.servers import HOST, find_binary, free_port, free_port_range
from tests.e2e.services import CallStack

SIP_AGENT = "frontdesk-e2e"  # explicit dispatch, as in production: the rule names the agent
CALLER_NUMBER = "+12125550143"
SCENARIOS = Path(__file__).resolve().parent / "sipp"
GREETING_SECONDS = 12.0  # the caller waits this long (in silence) before speaking

_MISSING = skip_reason("livekit-server", "livekit-sip", "redis-server", "sipp")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]


@pytest.fixture(scope="module")
async def sip_stack(tmp_path_factory: pytest.TempPathFactory, e2e_dsn: str):
    stack = CallStack(tmp_path_factory.mktemp("e2e-sip"), dsn=e2e_dsn, sip=True,
                      agent_name=SIP_AGENT).start()
    register_stack(stack)
    assert stack.livekit is not None
    async with api.LiveKitAPI(stack.livekit.http_url, stack.livekit.api_key,
                              stack.livekit.api_secret) as lk:
        trunk = await lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(
            trunk=api.SIPInboundTrunkInfo(name="e2e demo numbers", numbers=[NEW_YORK_NUMBER],
                                          allowed_addresses=[f"{HOST}/32"])))
        await lk.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(
            dispatch_rule=api.SIPDispatchRuleInfo(
                name="e2e calls to the receptionist", trunk_ids=[trunk.sip_trunk_id],
                rule=api.SIPDispatchRule(
                    dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix="call-")),
                room_config=api.RoomConfiguration(
                    agents=[api.RoomAgentDispatch(agent_name=SIP_AGENT)]))))
    yield stack
    unregister_stack(stack)
    stack.stop()


def phone_speech(text: str, path: Path, *, trailing: float = 25.0) -> Path:
    """`text` as 8 kHz u-law after GREETING_SECONDS of silence, and silence after it: audio
    flows the whole call (the bridge hangs up on a call that sends none for ~30 s)."""
    samples, rate = speak_pcm(text, voice=CALLER_VOICE, wpm=CALLER_WPM)
    pcm = np.concatenate([np.zeros(int(GREETING_SECONDS * RATE), np.int16), resample(samples, rate),
                          np.zeros(int(trailing * RATE), np.int16)])
    return write_ulaw_wav(path, ulaw_encode(pcm))


async def dial_with_sipp(stack: CallStack, scenario: str, sentence: str, workdir: Path, *,
                         hold_ms: int | None = None) -> int:
    """Run one sipp call from `workdir` (where speech.wav is); sipp's exit status."""
    assert stack.sip is not None
    phone_speech(sentence, workdir / "speech.wav")
    argv = [find_binary("sipp") or "sipp", "-sf", str(SCENARIOS / scenario),
            "-i", HOST, "-p", str(free_port(tcp=False, udp=True)),
            "-mi", HOST, "-mp", str(free_port_range(4)[0]),
            "-m", "1", "-nostdin", "-timeout", "90s", "-trace_err", "-trace_msg",
            "-s", NEW_YORK_NUMBER, "-key", "caller", CALLER_NUMBER,
            *(["-d", str(hold_ms)] if hold_ms else []), stack.sip.sip_uri_host]
    # Its screen output is of no use here: -trace_err/-trace_msg write logs into `workdir`.
    proc = await asyncio.create_subprocess_exec(*argv, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def phone_call(conn: asyncpg.Connection, since: float, *, status: str) -> CallReport:
    """The SIP call placed after `since`, once closed with `status` and room_finished stored."""

    async def latest() -> str | None:
        return await conn.fetchval(
            "select session_id from voice_calls where caller_number = $1 and dialed_number = $2"
            " and created_at >= to_timestamp($3) order by created_at desc limit 1",
            CALLER_NUMBER, NEW_YORK_NUMBER, since)

    session_id = await poll(latest, bool, within=20, what="a SIP call on record")
    return await settled_report(conn, session_id, status=status)


def sipp_log(workdir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in workdir.glob("*.log"))


async def test_phone_call_is_routed_by_the_dialed_number_and_closed_by_the_callers_bye(
        sip_stack, e2e_conn, tmp_path):
    since = time.time()
    status = await dial_with_sipp(sip_stack, "uac_audio.xml", CALLER_LINES[QUESTION], tmp_path,
                                  hold_ms=int((GREETING_SECONDS + 10) * 1000))
    assert status == 0, sipp_log(tmp_path)

    report = await phone_call(e2e_conn, since, status="completed")
    call = report.call
    midtown = await locations.find_location_by_number(e2e_conn, phone_number=NEW_YORK_NUMBER)
    assert call.room_name.startswith("call-")
    assert (call.caller_number, call.dialed_number) == (CALLER_NUMBER, NEW_YORK_NUMBER)
    assert await e2e_conn.fetchval("select location_id from voice_calls where id = $1",
                                   call.id) == midtown.id
    assert call.metadata["routed_by"] == "dialed_number"
    assert (call.end_reason, call.closed_by) == ("caller_hung_up", "agent")
    (phone,) = [p for p in report.participants if p.participant_type == "user"]
    assert phone.kind == "sip" and phone.left_at is not None
    assert phone.attributes["sip.phoneNumber"] == CALLER_NUMBER
    assert phone.attributes["sip.trunkPhoneNumber"] == NEW_YORK_NUMBER
    assert call.sip_call_id and call.sip_call_id == phone.attributes["sip.callID"]
    assert any("parking" in m.content for m in report.messages if m.role == "user")


async def test_agent_ending_the_call_hangs_up_the_phone_with_a_bye(sip_stack, e2e_conn, tmp_path):
    since = time.time()
    status = await dial_with_sipp(sip_stack, "uac_expect_bye.xml", ASK_TO_HANG_UP, tmp_path)
    assert status == 0, sipp_log(tmp_path)  # sipp received the BYE and answered it

    report = await phone_call(e2e_conn, since, status="completed")
    assert (report.call.end_reason, report.call.closed_by) == ("agent_ended_call", "agent")
    assert ("call_ended", {"by": "agent"}) in [(e.event_type, e.payload) for e in report.events]


async def test_transfer_to_a_human_reaches_the_phone_as_a_refer(sip_stack, e2e_conn, tmp_path):
    since = time.time()
    status = await dial_with_sipp(sip_stack, "uac_accept_refer.xml", ASK_FOR_A_PERSON, tmp_path)
    log = sipp_log(tmp_path)
    assert status == 0, log  # REFER accepted, NOTIFY 200 sent, the bridge's BYE answered

    refer = log[log.index("REFER sip:"):]
    refer_to = next(line for line in refer.splitlines() if line.lower().startswith("refer-to:"))
    assert ESCALATION_NUMBER in refer_to
    report = await phone_call(e2e_conn, since, status="completed")
    assert (report.call.outcome, report.call.end_reason) == ("transferred", "transferred")
    transfers = [e.payload for e in report.events if e.event_type == "transfer"]
    assert transfers == [{"to": ESCALATION_NUMBER, "ok": True}]

