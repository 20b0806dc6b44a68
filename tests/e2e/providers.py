"""Offline providers for the worker in CI, where the cloud ones are out of reach:

    PROVIDERS=tests.e2e.providers:offline python -m agent dev

PocketSphinx speech recognition (model in its wheel), espeak-ng speech synthesis (Debian), the
scripted stand-in model of `tests.e2e.conversation`, and VAD turn detection (the worker's Silero
VAD; no turn-detector model). Run from the repository root so that `tests` is importable."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from agent.providers import MissingSettings, Providers
from agent.scripted import ScriptedLLM
from agent.settings import Settings
from tests.e2e.conversation import CALLER_CORPUS, receptionist_policy
from tests.e2e.offline_stt import PocketSphinxSTT
from tests.e2e.offline_tts import EspeakTTS

LLM_MODEL = "scripted-e2e"


def offline(settings: Settings) -> Providers:
    if shutil.which("espeak-ng") is None:
        raise MissingSettings(["espeak-ng on PATH (apt-get install espeak-ng)"])
    speech_in = PocketSphinxSTT(corpus=CALLER_CORPUS)
    speech_out = EspeakTTS()
    return Providers(
        llm=ScriptedLLM(receptionist_policy(datetime.now(UTC).date()), model=LLM_MODEL),
        stt=speech_in,
        tts=speech_out,
        turn_detection="vad",
        models={"stt_model": speech_in.model, "llm_model": LLM_MODEL, "tts_model": speech_out.model},
    )
