"""A speech synthesiser whose voice is a tone: `seconds_per_char` of audio per character of
text, the first audio after `ttfb` seconds. Non-streaming, so LiveKit drives it through its
StreamAdapter, one synthesis per sentence, like any HTTP TTS."""

from __future__ import annotations

import array
import asyncio
import itertools
import math

from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

SAMPLE_RATE = 24000
CHUNK_SECONDS = 0.1


def _tone_bytes(seconds: float, hz: float = 180.0, amplitude: int = 6000) -> bytes:
    n = round(seconds * SAMPLE_RATE)
    return array.array("h", (int(amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE))
                             for i in range(n))).tobytes()


class FakeTTS(tts.TTS):
    def __init__(self, *, seconds_per_char: float = 0.012, ttfb: float = 0.05) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                         sample_rate=SAMPLE_RATE, num_channels=1)
        self.seconds_per_char = seconds_per_char
        self.ttfb = ttfb
        self._ids = itertools.count(1)
        self._chunk = _tone_bytes(CHUNK_SECONDS)
        self.spoken: list[str] = []  # every text synthesised, in order

    @property
    def model(self) -> str:
        return "tone"

    @property
    def provider(self) -> str:
        return "tests"

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.ChunkedStream:
        return _Synthesis(tts=self, input_text=text, conn_options=conn_options)


class _Synthesis(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        voice: FakeTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(request_id=f"tts-{next(voice._ids)}", sample_rate=SAMPLE_RATE,
                                  num_channels=1, mime_type="audio/pcm")
        voice.spoken.append(self.input_text)
        await asyncio.sleep(voice.ttfb)
        remaining = max(len(self.input_text.strip()), 1) * voice.seconds_per_char
        while remaining > 1e-9:
            part = min(CHUNK_SECONDS, remaining)
            output_emitter.push(voice._chunk if part == CHUNK_SECONDS else _tone_bytes(part))
            remaining -= part
            await asyncio.sleep(0)  # synthesis streams: let the first chunk out before the rest
        output_emitter.flush()
