"""The webhook service's settings: read once, at the entrypoint, from the environment or `.env`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import SecretStr

from db.settings import DatabaseSettings
from webhooks.app import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_COMMIT_LANES,
    DEFAULT_JOURNAL_MAX_BYTES,
    DEFAULT_MAX_BODY_BYTES,
)

DEFAULT_PORT = 8787
# livekit-server --dev's key pair: published in LiveKit's docs, so it proves nothing.
DEV_KEYS = {"devkey": "secret"}


class Settings(DatabaseSettings):
    # Defaults match `livekit-server --dev`.
    livekit_api_key: str = "devkey"
    livekit_api_secret: SecretStr = SecretStr("secret")
    # More key pairs accepted during a rotation: "key1:secret1,key2:secret2".
    webhook_keys: SecretStr = SecretStr("")
    webhook_host: str = "127.0.0.1"
    webhook_port: int = DEFAULT_PORT
    webhook_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Connections to Postgres; deliveries beyond it wait for one (they are a few ms each).
    webhook_db_pool_size: int = 10
    # Signed outbound webhooks (README, "Signed outbound webhooks"): delivered by this service
    # unless off (OUTBOUND_ENABLED=false or --no-outbound).
    outbound_enabled: bool = True
    outbound_timeout_s: float = 10.0
    outbound_per_endpoint: int = 4
    outbound_max_in_flight: int = 64
    outbound_poll_interval_s: float = 1.0
    # Retention (db.privacy.retention) runs this often from the service; 0 turns it off.
    retention_interval_hours: float = 24.0
    # The recorder's spool folder on this host, whose old dead-letter files retention deletes.
    spool_dir: Path | None = None
    # Transactions storing deliveries at once; deliveries that arrive together share one.
    webhook_commit_lanes: int = DEFAULT_COMMIT_LANES
    # Seconds a request body may take to arrive (408 and the connection closed after that).
    webhook_body_timeout: float = DEFAULT_BODY_TIMEOUT_S
    # Deliveries that arrive while Postgres is away are kept here (fsync'd), applied once it is back.
    webhook_journal_dir: Path = Path(".data/webhook-journal")
    webhook_journal_max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES
    # Accept the dev key pair on an address other than loopback (a LAN dev setup); off: refuse.
    webhook_allow_dev_keys: bool = False

    def key_pairs(self) -> dict[str, str]:
        """API key -> secret for every key pair a delivery may be signed with."""
        pairs = {self.livekit_api_key: self.livekit_api_secret.get_secret_value()}
        for item in filter(None, (p.strip() for p in self.webhook_keys.get_secret_value().split(","))):
            key, sep, secret = item.partition(":")
            if not sep or not key.strip() or not secret:
                raise ValueError(f"WEBHOOK_KEYS entries are key:secret (got one for {key.strip()!r})")
            if pairs.get(key.strip(), secret) != secret:
                raise ValueError(f"WEBHOOK_KEYS gives key {key.strip()!r} a second, different secret")
            pairs[key.strip()] = secret
        return pairs


def refuse_dev_keys(pairs: dict[str, str], host: str) -> None:
    """ValueError when the dev key pair would verify deliveries on an address other than
    loopback: anyone who can reach the port could then sign webhooks."""
    dev = [key for key, secret in DEV_KEYS.items() if pairs.get(key) == secret]
    if dev and not _loopback(host):
        raise ValueError(
            f"the dev API key pair ({dev[0]}) is accepted and the service would listen on {host!r}, "
            "not only on loopback: set LIVEKIT_API_KEY/LIVEKIT_API_SECRET to your server's pair, "
            "or pass --allow-dev-keys (WEBHOOK_ALLOW_DEV_KEYS=true) for a LAN dev setup")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name (or "" for every address): it may resolve anywhere
