"""The admin API's settings, read from the environment (API_*) or `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8788
    db_pool_size: int = 10
    # Requests per key: a bucket of `rate_limit_burst` refilled at `rate_limit_per_minute`.
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 60
    # Origins allowed to call the API from a browser; empty: CORS off (the console is same-origin).
    cors_origins: list[str] = []
    # Mark the console's cookies Secure (set it behind HTTPS).
    cookie_secure: bool = False
    # Where analysis reports made through the API are written (tracked in analysis_exports; kept
    # ANALYSIS_EXPORT_DAYS, then `python -m analysis cleanup` deletes them).
    export_dir: Path = Path(".data/analysis-exports")
