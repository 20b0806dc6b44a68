"""A voice activity detector that calls loud frames speech: a real detector's event protocol
(start of speech after `min_speech` seconds of it, end after `min_silence` seconds of quiet, an
inference result per frame) without a model, so what it hears is exactly what the test said."""

from __future__ import annotations

import array
import time

from livekit import rtc
from livekit.agents import vad

SPEECH_RMS = 500.0


def is_speech(frame: rtc.AudioFrame) -> bool:
    samples = array.array("h", bytes(frame.data))
    if not samples:
        return False
    return (sum(s * s for s in samples) / len(samples)) ** 0.5 >= SPEECH_RMS


class EnergyVAD(vad.VAD):
    def __init__(self, *, min_speech: float = 0.05, min_silence: float = 0.3) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.02))
        self.min_speech = min_speech
        self.min_silence_duration = min_silence  # the name LiveKit's turn handling reads

    @property
    def model(self) -> str:
        return "energy"

    @property
    def provider(self) -> str:
        return "tests"

    def stream(self) -> vad.VADStream:
        return _EnergyStream(self)


class _EnergyStream(vad.VADStream):
    def __init__(self, detector: EnergyVAD) -> None:
        self._detector = detector
        self._reset()
        super().__init__(detector)

    def _reset(self) -> None:
        self._speaking = False
        self._speech = 0.0  # published speech duration of the current segment
        self._silence = 0.0  # published silence duration
        self._raw_speech = 0.0  # consecutive loud seconds
        self._raw_silence = 0.0  # consecutive quiet seconds
        self._samples = 0
        self._frames: list[rtc.AudioFrame] = []  # the utterance so far

    def _event(self, kind: vad.VADEventType, **fields) -> vad.VADEvent:
        return vad.VADEvent(type=kind, samples_index=self._samples, timestamp=time.time(),
                            speech_duration=self._speech, silence_duration=self._silence,
                            speaking=self._speaking, **fields)

    async def _main_task(self) -> None:
        detector = self._detector
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                self._reset()
                continue
            frame: rtc.AudioFrame = item
            loud = is_speech(frame)
            seconds = frame.duration
            self._samples += frame.samples_per_channel
            if self._speaking:
                self._speech += seconds
            else:
                self._silence += seconds
            if loud or self._speaking:
                self._frames.append(frame)
            self._event_ch.send_nowait(self._event(
                vad.VADEventType.INFERENCE_DONE, frames=[frame], probability=1.0 if loud else 0.0,
                raw_accumulated_speech=self._raw_speech, raw_accumulated_silence=self._raw_silence))
            if loud:
                self._raw_speech += seconds
                self._raw_silence = 0.0
                if not self._speaking and self._raw_speech >= detector.min_speech:
                    self._speaking, self._speech, self._silence = True, self._raw_speech, 0.0
                    self._event_ch.send_nowait(self._event(
                        vad.VADEventType.START_OF_SPEECH, frames=[rtc.combine_audio_frames(self._frames)]))
            else:
                self._raw_silence += seconds
                self._raw_speech = 0.0
                if not self._speaking:
                    self._frames.clear()
                elif self._raw_silence >= detector.min_silence_duration:
                    self._speaking, self._silence = False, self._raw_silence
                    self._speech = max(0.0, self._speech - self._raw_silence)
                    self._event_ch.send_nowait(self._event(
                        vad.VADEventType.END_OF_SPEECH, frames=[rtc.combine_audio_frames(self._frames)]))
                    self._speech = 0.0
                    self._frames = []
