"""The caller's microphone and the agent's loudspeaker, as LiveKit audio input and output.

The microphone is clocked in real time like a sound card: it yields one 20 ms frame per 20 ms,
silence unless the caller is speaking, when it yields a tone. The loudspeaker takes the agent's
audio as fast as it is produced and "plays" it: playback starts on the first frame and finishes
`duration / speed` seconds of unpaused time later; a pause holds the play head, a clear (a
barge-in) stops it where it is."""

from __future__ import annotations

import array
import asyncio
import math
import time

from livekit import rtc
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities, TextOutput

SAMPLE_RATE = 16000
FRAME_SECONDS = 0.02


def _frame(samples: array.array) -> rtc.AudioFrame:
    return rtc.AudioFrame(data=samples.tobytes(), sample_rate=SAMPLE_RATE, num_channels=1,
                          samples_per_channel=len(samples))


def tone(seconds: float, *, hz: float = 220.0, amplitude: int = 8000) -> rtc.AudioFrame:
    n = round(seconds * SAMPLE_RATE)
    return _frame(array.array("h", (int(amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE))
                                    for i in range(n))))


def silence(seconds: float) -> rtc.AudioFrame:
    return _frame(array.array("h", bytes(2 * round(seconds * SAMPLE_RATE))))


class Microphone(AudioInput):
    """A live microphone: a frame every FRAME_SECONDS of wall-clock time, for as long as the
    session reads it. `speak(seconds)` makes the next `seconds` of frames speech."""

    def __init__(self) -> None:
        super().__init__(label="tests.Microphone")
        self._speech = tone(FRAME_SECONDS)
        self._silence = silence(FRAME_SECONDS)
        self._next_at: float | None = None
        self._speech_frames = 0
        self._spoken = asyncio.Event()
        self._spoken.set()

    async def __anext__(self) -> rtc.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._next_at is None:
            self._next_at = loop.time()
        delay = self._next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_at += FRAME_SECONDS
        if self._speech_frames > 0:
            self._speech_frames -= 1
            if self._speech_frames == 0:
                self._spoken.set()
            return self._speech
        return self._silence

    async def speak(self, seconds: float) -> None:
        """Speak for `seconds`; returns when the last frame of speech has been read."""
        if not self._spoken.is_set():
            raise RuntimeError("the caller is already speaking")
        self._speech_frames = max(1, round(seconds / FRAME_SECONDS))
        self._spoken.clear()
        await self._spoken.wait()


class Speaker(AudioOutput):
    """Plays the agent's audio at `speed` times real time. It can pause, like a room's audio
    output, so a barge-in first pauses the agent and the transcript then interrupts it."""

    def __init__(self, *, speed: float = 1.0, can_pause: bool = True) -> None:
        super().__init__(label="tests.Speaker",
                         capabilities=AudioOutputCapabilities(pause=can_pause))
        self.speed = speed
        self._pushed = 0.0  # seconds of audio in the current segment
        self._played = 0.0  # seconds of it played before the last pause
        self._resumed_at: float | None = None  # when the play head last started moving
        self._paused = False
        self._flushed = False
        self._finish: asyncio.TimerHandle | None = None
        self.played: list[tuple[float, bool]] = []  # (seconds played, interrupted) per segment

    def _position(self) -> float:
        moving = (time.time() - self._resumed_at) * self.speed if self._resumed_at else 0.0
        return min(self._pushed, self._played + moving)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._pushed:
            self._played, self._flushed = 0.0, False
            self._resumed_at = None if self._paused else time.time()
            self.on_playback_started(created_at=time.time())
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._pushed:
            self._flushed = True
            self._schedule_finish()

    def _schedule_finish(self) -> None:
        if self._finish is not None:
            self._finish.cancel()
            self._finish = None
        if self._flushed and self._resumed_at is not None:
            remaining = (self._pushed - self._position()) / self.speed
            self._finish = asyncio.get_running_loop().call_later(max(remaining, 0.0), self._done)

    def _done(self, *, interrupted: bool = False) -> None:
        if self._finish is not None:
            self._finish.cancel()
            self._finish = None
        position = self._pushed if not interrupted else self._position()
        self.played.append((position, interrupted))
        self._pushed, self._played, self._resumed_at, self._flushed = 0.0, 0.0, None, False
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    def clear_buffer(self) -> None:
        if self._pushed:
            self._done(interrupted=True)

    def pause(self) -> None:
        super().pause()
        if not self._paused and self._pushed:
            self._played, self._resumed_at = self._position(), None
            self._schedule_finish()
        self._paused = True

    def resume(self) -> None:
        super().resume()
        if self._paused and self._pushed:
            self._resumed_at = time.time()
            self._schedule_finish()
        self._paused = False


class TextSink(TextOutput):
    """Where the agent's transcript goes (a room would show it as captions)."""

    def __init__(self) -> None:
        super().__init__(label="tests.TextSink", next_in_chain=None)
        self.segments: list[str] = []
        self._current = ""

    async def capture_text(self, text: str) -> None:
        self._current += text

    def flush(self) -> None:
        self.segments.append(self._current)
        self._current = ""
