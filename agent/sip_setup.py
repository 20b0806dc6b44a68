"""`python -m agent.sip_setup`: connect a phone number to the receptionist.

Creates, through the LiveKit API (LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET), an inbound
SIP trunk for the number and a dispatch rule that puts each call in its own room (`call-...`)
and dispatches the agent named AGENT_NAME (explicit dispatch) into it. Run it once per number;
point your SIP provider's trunk at your LiveKit SIP endpoint."""

from __future__ import annotations

import argparse
import asyncio
import sys

from livekit import api

from agent.settings import Settings
from db.demo.seed import NEW_YORK_NUMBER


async def create(settings: Settings, *, number: str, agent_name: str,
                 allowed_addresses: list[str]) -> tuple[str, str]:
    async with api.LiveKitAPI(settings.livekit_url, settings.livekit_api_key,
                              settings.livekit_api_secret) as lk:
        trunk = await lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(
            trunk=api.SIPInboundTrunkInfo(name=f"frontdesk {number}", numbers=[number],
                                          allowed_addresses=allowed_addresses)))
        rule = await lk.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(
            name=f"frontdesk {number}",
            trunk_ids=[trunk.sip_trunk_id],
            rule=api.SIPDispatchRule(
                dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix="call-")),
            room_config=api.RoomConfiguration(
                agents=[api.RoomAgentDispatch(agent_name=agent_name)]),
        ))
    return trunk.sip_trunk_id, rule.sip_dispatch_rule_id


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.sip_setup", description=__doc__)
    parser.add_argument("--number", default=NEW_YORK_NUMBER,
                        help="the E.164 number callers dial (default: the demo Midtown number)")
    parser.add_argument("--agent-name", default=None, help="default: AGENT_NAME")
    parser.add_argument("--allow", action="append", default=[],
                        help="IP/CIDR your SIP provider calls from (repeatable; default: any)")
    args = parser.parse_args()
    settings = Settings()
    agent_name = args.agent_name or settings.agent_name
    if not agent_name:
        print("error: set AGENT_NAME (or --agent-name): SIP calls need explicit dispatch",
              file=sys.stderr)
        return 2
    trunk_id, rule_id = asyncio.run(create(settings, number=args.number, agent_name=agent_name,
                                           allowed_addresses=args.allow))
    print(f"inbound trunk {trunk_id} for {args.number}; dispatch rule {rule_id} -> agent "
          f"{agent_name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
