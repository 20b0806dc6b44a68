"""The person on the line: says scripted sentences into the microphone, which the scripted STT
will transcribe."""

from __future__ import annotations

from tests.fakes.audio import Microphone
from tests.fakes.stt import ScriptedSTT

SECONDS_PER_WORD = 0.15


class ScriptedCaller:
    def __init__(self, microphone: Microphone, stt: ScriptedSTT) -> None:
        self.microphone = microphone
        self.stt = stt

    async def say(self, text: str, *, confidence: float, seconds: float | None = None) -> None:
        """Speak `text` (as `seconds` of audio, by default in proportion to its words); returns
        when the last of it has gone into the microphone."""
        self.stt.expect(text, confidence=confidence)
        await self.microphone.speak(seconds or SECONDS_PER_WORD * len(text.split()))
