"""What the entrypoint builds from the settings: the analyser and the worker's options."""

from __future__ import annotations

from analysis.analyser import Analyser
from analysis.rules import RulesAnalyser
from analysis.settings import Settings
from analysis.worker import WorkerOptions


def analyser(settings: Settings) -> Analyser:
    """The model analyser when a model is configured, else the offline rules."""
    base_url = settings.analysis_base_url or settings.openai_base_url
    if not (settings.openai_api_key or settings.analysis_base_url):
        return RulesAnalyser()
    from openai import AsyncOpenAI

    from analysis.model import ModelAnalyser

    client = AsyncOpenAI(api_key=settings.openai_api_key or "unused", base_url=base_url or None,
                         timeout=settings.analysis_timeout_seconds,
                         max_retries=settings.analysis_client_retries)
    return ModelAnalyser(client, model=settings.analysis_model)


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        batch_size=settings.analysis_batch_size, concurrency=settings.analysis_concurrency,
        lease_seconds=settings.analysis_lease_seconds, max_attempts=settings.analysis_max_attempts,
        backoff_seconds=settings.analysis_backoff_seconds, poll_seconds=settings.analysis_poll_seconds,
    )
