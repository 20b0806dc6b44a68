"""A speech recogniser that knows what the caller will say: each utterance it is given (the
audio the VAD cut out) is answered, after `delay` seconds, with the next scripted line and its
confidence. It is a non-streaming STT, so LiveKit runs it the way it runs any batch recogniser:
behind its StreamAdapter, one recognition per VAD-detected utterance."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass

from livekit.agents import APIConnectOptions, stt
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer
from livekit.agents.utils.audio import calculate_audio_duration


@dataclass(frozen=True)
class Heard:
    text: str
    confidence: float
    audio_seconds: float


class ScriptedSTT(stt.STT):
    def __init__(self, *, delay: float = 0.08) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.delay = delay
        self._lines: deque[tuple[str, float]] = deque()
        self._ids = itertools.count(1)
        self.heard: list[Heard] = []
        self.unexpected = 0  # utterances with no scripted line left

    @property
    def model(self) -> str:
        return "scripted"

    @property
    def provider(self) -> str:
        return "tests"

    def expect(self, text: str, *, confidence: float) -> None:
        """The transcript of the next utterance."""
        self._lines.append((text, confidence))

    async def _recognize_impl(self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions) -> stt.SpeechEvent:
        await asyncio.sleep(self.delay)
        request_id = f"stt-{next(self._ids)}"
        if not self._lines:
            self.unexpected += 1
            return stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, request_id=request_id)
        text, confidence = self._lines.popleft()
        self.heard.append(Heard(text, confidence, calculate_audio_duration(buffer)))
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT, request_id=request_id,
            alternatives=[stt.SpeechData(language="en", text=text, confidence=confidence)])
