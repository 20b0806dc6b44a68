"""Offline speech synthesis for the e2e worker: Debian's espeak-ng, one process per sentence.

Non-streaming (text in, audio out): AgentSession wraps it in LiveKit's `tts.StreamAdapter`,
which cuts the model's reply into sentences and synthesises them one after another. The PCM is
pushed as espeak-ng writes it, so the first audio frame leaves before the sentence is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct

from livekit.agents import APIConnectOptions, APIError, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.utils import shortuuid

SAMPLE_RATE = 22050  # what espeak-ng's voices speak at
_HEADER = 44  # espeak-ng --stdout writes a canonical RIFF header: fmt at 12, data at 36


class EspeakTTS(tts.TTS):
    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 175) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                         sample_rate=SAMPLE_RATE, num_channels=1)
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.binary = shutil.which("espeak-ng")

    @property
    def model(self) -> str:
        return f"espeak-ng/{self.voice}"

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> _EspeakStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


def _check_header(header: bytes) -> None:
    if header[:4] != b"RIFF" or header[12:16] != b"fmt " or header[36:40] != b"data":
        raise APIError("espeak-ng did not write a WAV header", retryable=False)
    channels, rate, _, _, bits = struct.unpack("<HIIHH", header[22:36])
    if (channels, rate, bits) != (1, SAMPLE_RATE, 16):
        raise APIError(f"espeak-ng wrote {channels} ch {rate} Hz {bits} bit", retryable=False)


class _EspeakStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: EspeakTTS = self._tts  # type: ignore[assignment]
        if engine.binary is None:
            raise APIError("espeak-ng is not installed (apt-get install espeak-ng)", retryable=False)
        # The text goes in on stdin: as an argument, a sentence starting with "-" is an option.
        proc = await asyncio.create_subprocess_exec(
            engine.binary, "-v", engine.voice, "-s", str(engine.words_per_minute), "--stdout",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdin.write(self.input_text.encode())
            proc.stdin.close()
            _check_header(await proc.stdout.readexactly(_HEADER))
            output_emitter.initialize(request_id=shortuuid(), sample_rate=SAMPLE_RATE,
                                      num_channels=1, mime_type="audio/pcm")
            odd = b""
            while chunk := await proc.stdout.read(4096):
                chunk, odd = odd + chunk, b""
                if len(chunk) % 2:  # never split a 16-bit sample
                    chunk, odd = chunk[:-1], chunk[-1:]
                output_emitter.push(chunk)
            if await proc.wait() != 0:
                raise APIError(f"espeak-ng failed: {(await proc.stderr.read()).decode()[:200]}")
            output_emitter.flush()
        except asyncio.IncompleteReadError as exc:
            raise APIError("espeak-ng wrote no audio", retryable=False) from exc
        finally:
            if proc.returncode is None:  # interrupted mid-sentence: stop it
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
