"""`python -m agent.token`: a join token for talking to the agent from a browser (LiveKit's
Agents Playground or Meet: give it LIVEKIT_URL and this token)."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta

from livekit import api

from agent.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m agent.token", description=__doc__)
    parser.add_argument("--room", default=f"call-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--identity", default="caller")
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    settings = Settings()
    token = (api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret)
             .with_identity(args.identity)
             .with_ttl(timedelta(hours=args.hours))
             .with_grants(api.VideoGrants(room_join=True, room=args.room))
             .to_jwt())
    print(f"url:   {settings.livekit_url}\nroom:  {args.room}\ntoken: {token}")


if __name__ == "__main__":
    main()
