"""The analysis workers' and manager runs' settings: read once, at the entrypoint, from the
environment or `.env`."""

from __future__ import annotations

from pydantic import Field

from db.settings import DatabaseSettings


class Settings(DatabaseSettings):
    # The model: with OPENAI_API_KEY (or ANALYSIS_BASE_URL, for a local OpenAI-compatible server)
    # the model analyser; without either, the offline rules analyser.
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    analysis_base_url: str | None = None  # wins over OPENAI_BASE_URL for analysis
    analysis_model: str = "gpt-4o-mini"
    analysis_timeout_seconds: float = Field(60.0, gt=0)
    # The client's own retries of one request (rate limits, 5xx, timeouts), with its backoff.
    analysis_client_retries: int = Field(2, ge=0)

    # The queue
    analysis_batch_size: int = Field(50, ge=1, le=1000)
    analysis_concurrency: int = Field(8, ge=1)  # model requests at once per worker
    analysis_lease_seconds: float = Field(300.0, gt=0)  # a dead worker's jobs return after this
    analysis_max_attempts: int = Field(5, ge=1)
    analysis_backoff_seconds: float = Field(30.0, ge=0)  # doubled after each failed attempt
    analysis_poll_seconds: float = Field(2.0, gt=0)

    # Prometheus /metrics of `python -m analysis work` (unset: not served)
    analysis_metrics_host: str = "127.0.0.1"
    analysis_metrics_port: int | None = Field(None, ge=0, le=65535)

    # Exports: how long a written report is kept before `cleanup` deletes it
    analysis_export_days: int = Field(7, ge=0)
