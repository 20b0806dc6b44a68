"""A provider factory for a worker process started by a test that needs no call to run (its
/metrics, its startup): the scripted model alone, no speech in or out.

    PROVIDERS=tests.worker_providers:scripted python -m agent start
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent.demo_script import receptionist_policy
from agent.providers import Providers
from agent.scripted import ScriptedLLM
from agent.settings import Settings


def scripted(settings: Settings) -> Providers:
    model = ScriptedLLM(receptionist_policy(datetime.now(UTC).date()), model="scripted-worker")
    return Providers(llm=model, models={"llm_model": "scripted-worker"})
