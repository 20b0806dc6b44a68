"""The webhook service's settings: read once, at the entrypoint, from the environment or `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from db.settings import DatabaseSettings
from webhooks.app import DEFAULT_MAX_BODY_BYTES

DEFAULT_PORT = 8787


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
