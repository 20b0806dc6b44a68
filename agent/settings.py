"""The agent worker's settings: read once, at the entrypoint, from the environment or `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from db.settings import DatabaseSettings


class Settings(DatabaseSettings):
    # LiveKit (defaults match `livekit-server --dev`)
    livekit_url: str = "ws://localhost:7880"
    livekit_api_key: str = "devkey"
    livekit_api_secret: str = "secret"
    agent_name: str = Field(
        "", description="empty: automatic dispatch to every room; a name: explicit dispatch only"
    )

    # The machine's CPU load (0 to 1) from which this worker turns new calls away, for LiveKit to
    # give them to another worker (LiveKit's default). `inf` never turns one away: for a single
    # worker on a shared machine, such as the e2e tier's.
    load_threshold: float = 0.7
    # The worker's health endpoint (LiveKit's HTTP server: `/` answers while it runs, for a
    # container's probe): all interfaces on 8081 by default; 0 takes any free port.
    health_host: str = ""
    health_port: int = Field(8081, ge=0, le=65535)
    # Prometheus /metrics (LiveKit's and ours, agent/metrics.py) on this port; unset: not served.
    # Job processes write their metrics to files in PROMETHEUS_DIR, which the worker empties when
    # it starts (not PROMETHEUS_MULTIPROC_DIR: prometheus_client reads that one itself, at import).
    prometheus_port: int | None = Field(None, ge=0, le=65535)
    prometheus_dir: Path = Path(".data/prometheus")

    # Database: DATABASE_URL, EMBEDDED_PG_DIR, MIGRATE_ON_START (db.settings); the recorder's
    # spool of rows Postgres has not taken yet
    spool_dir: Path = Path(".data/spool")

    # Providers: an import path `module:function` returning agent.providers.Providers
    providers: str = "agent.providers:cloud"
    deepgram_api_key: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    stt_model: str = "nova-3"
    llm_model: str = "gpt-4o-mini"
    tts_provider: str = "openai"  # openai | deepgram
    tts_voice: str = "alloy"
    tts_model: str | None = None

    # Query, lock and connect timeouts: STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS,
    # CONNECT_TIMEOUT_SECONDS (db.settings), shared with every process.

    # Silence that ends an utterance for the VAD (Silero's default is 0.55 s). It must not exceed
    # the endpointing policies (agent.session.turn_handling, LiveKit's default 0.5 s): a turn ends
    # after whichever is longer, and a batch STT only starts once the VAD has ended the utterance.
    vad_min_silence_seconds: float = Field(0.25, gt=0)

    # Which business answers when a call cannot be routed by the number dialled
    default_organization_slug: str | None = None

    # End of call: how long the job waits for the recorder to write the last rows
    flush_deadline_seconds: float = 5.0
    # How long the recorder lets rows gather before a write: rows reach Postgres this much
    # later, in fewer transactions (bench/turn_overhead.py: at 5 ms a turn costs ~1.6 ms more
    # CPU than unrecorded, at 100 ms ~0.3 ms).
    recorder_flush_seconds: float = 0.1
