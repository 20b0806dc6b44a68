"""Speech and language providers, chosen by the PROVIDERS setting: an import path to a factory
`(settings) -> Providers`. The default, `cloud`, is Deepgram STT, an OpenAI(-compatible) LLM and
OpenAI or Deepgram TTS; tests and CI point it at offline providers instead."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm, stt, tts

from agent.settings import Settings


class MissingSettings(RuntimeError):
    """Raised at start when variables the chosen providers need are not set."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            "missing settings for the configured providers: " + ", ".join(names)
            + " (set them in the environment or .env; see .env.example)"
        )
        self.names = names


@dataclass
class Providers:
    llm: llm.LLM
    stt: stt.STT | None = None
    tts: tts.TTS | None = None
    # None: the session's default for the bundled local turn detector; "vad"/"stt" also work.
    turn_detection: Any = None
    # model names stored with each call
    models: dict[str, str | None] = field(default_factory=dict)


ProviderFactory = Callable[[Settings], Providers]


def missing_cloud_settings(settings: Settings) -> list[str]:
    missing = []
    if not settings.deepgram_api_key:
        missing.append("DEEPGRAM_API_KEY")
    if not settings.openai_api_key and not settings.openai_base_url:
        missing.append("OPENAI_API_KEY")
    if settings.tts_provider not in ("openai", "deepgram"):
        missing.append("TTS_PROVIDER (openai or deepgram)")
    return missing


def cloud(settings: Settings) -> Providers:
    """Deepgram STT, OpenAI-compatible LLM, OpenAI or Deepgram TTS."""
    from livekit.agents.inference import TurnDetector
    from livekit.plugins import deepgram, openai

    missing = missing_cloud_settings(settings)
    if missing:
        raise MissingSettings(missing)
    # An OpenAI-compatible server without auth still needs a non-empty key for the client.
    openai_key = settings.openai_api_key or "unused"
    base_url = settings.openai_base_url or None
    if settings.tts_provider == "deepgram":
        speech = deepgram.TTS(model=settings.tts_model or "aura-2-andromeda-en",
                              api_key=settings.deepgram_api_key)
    else:
        speech = openai.TTS(model=settings.tts_model or "gpt-4o-mini-tts", voice=settings.tts_voice,
                            api_key=openai_key, base_url=base_url)
    return Providers(
        stt=deepgram.STT(model=settings.stt_model, api_key=settings.deepgram_api_key),
        llm=openai.LLM(model=settings.llm_model, api_key=openai_key, base_url=base_url),
        tts=speech,
        # The "mini" model ships inside livekit-agents: nothing is downloaded at run time.
        turn_detection=TurnDetector(version="v1-mini"),
        models={"stt_model": settings.stt_model, "llm_model": settings.llm_model,
                "tts_model": f"{settings.tts_provider}/{settings.tts_model or settings.tts_voice}"},
    )


def load_factory(path: str) -> ProviderFactory:
    """`package.module:function` -> the function."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"PROVIDERS must look like 'package.module:function', not {path!r}")
    factory = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(factory):
        raise ValueError(f"PROVIDERS: {path!r} is not a function")
    return factory
