"""A caller on WebRTC, written with the `livekit` rtc SDK: it joins a room, speaks synthesised
sentences into a microphone track in real time, and listens to the agent's audio track.

The microphone never stops: between sentences it sends silence, as a real one does, so the
agent's VAD hears each sentence end. Listening is by energy only (the caller does not understand
the agent): "the agent speaks" is a decoded frame louder than `SPEECH_RMS`.

All times are `time.monotonic()` in this process, so the voice-to-voice latency of a turn
(caller stops speaking -> first agent audio arriving) is measured on one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import numpy as np
from livekit import api, rtc

from tests.e2e.audio import resample, speak_pcm

log = logging.getLogger(__name__)

RATE = 48000
FRAME = RATE // 100  # 10 ms
SPEECH_RMS = 300.0  # int16 RMS: espeak-ng speech is in the thousands, decoded silence near 0
CALLER_VOICE = "en-us+f2"  # the espeak-ng voice PocketSphinx recognises best (see offline_stt)
CALLER_WPM = 160


def caller_token(api_key: str, api_secret: str, *, room: str, identity: str, name: str,
                 kind: api.AccessToken.ParticipantKind | None = None,
                 attributes: dict[str, str] | None = None) -> str:
    """A token to join `room`. A `kind` of "sip" with the `sip.*` attributes is how LiveKit's SIP
    bridge joins a phone caller (the server takes kind and attributes from the token)."""
    token = (api.AccessToken(api_key, api_secret).with_identity(identity).with_name(name)
             .with_grants(api.VideoGrants(room_join=True, room=room)))
    if kind:
        token = token.with_kind(kind)
    if attributes:
        token = token.with_attributes(attributes)
    return token.to_jwt()


def speech(text: str) -> np.ndarray:
    """`text` at 48 kHz, without espeak-ng's trailing silence: the sentence ends where the voice
    does, which is where a voice-to-voice latency starts."""
    samples, rate = speak_pcm(text, voice=CALLER_VOICE, wpm=CALLER_WPM)
    samples = resample(samples, rate, RATE)
    voiced = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    return samples[: voiced[-1] + FRAME] if len(voiced) else samples


@dataclass
class Turn:
    text: str
    stopped_speaking: float  # when the last sample of the sentence left the microphone
    agent_started: float | None = None  # the first loud frame of the agent after that
    agent_finished: float | None = None

    @property
    def voice_to_voice(self) -> float | None:
        return None if self.agent_started is None else self.agent_started - self.stopped_speaking


class Caller:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.room = rtc.Room()
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
        self.turns: list[Turn] = []
        self.last_loud: float | None = None  # last loud agent frame
        self.agent_identity: str | None = None
        self._speech: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self._spoken: asyncio.Queue[float] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._heard = asyncio.Event()
        self._voice: dict[str, np.ndarray] = {}

    def rehearse(self, lines: list[str]) -> None:
        """Synthesise the lines before the call: espeak-ng must not stall the microphone."""
        for line in lines:
            self._voice.setdefault(line, speech(line))

    async def join(self) -> None:
        self.room.on("track_subscribed", self._on_track)
        await self.room.connect(self.url, self.token)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self.source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        self._tasks.append(asyncio.create_task(self._microphone(), name="microphone"))

    async def room_sid(self) -> str:
        return await self.room.sid

    async def hang_up(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.room.disconnect()

    # --- speaking --------------------------------------------------------------------

    async def _microphone(self) -> None:
        """10 ms frames at wall-clock pace: queued speech first, silence otherwise."""
        silence = np.zeros(FRAME, np.int16)
        pending: np.ndarray | None = None
        started, sent = time.monotonic(), 0
        while True:
            if pending is None and not self._speech.empty():
                pending = self._speech.get_nowait()
            if pending is not None:
                chunk, pending = pending[:FRAME], pending[FRAME:]
                if len(chunk) < FRAME:
                    chunk = np.concatenate([chunk, silence[: FRAME - len(chunk)]])
                if not len(pending):
                    pending = None
            else:
                chunk = silence
            await self.source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))
            sent += 1
            if pending is None and chunk is not silence:  # the sentence's last frame
                self._spoken.put_nowait(time.monotonic() + self.source.queued_duration)
            await asyncio.sleep(max(0.0, started + sent * 0.01 - time.monotonic()))

    async def say(self, text: str) -> Turn:
        """Speak `text`; returns once its last sample has been sent."""
        samples = self._voice.get(text)
        if samples is None:
            samples = self._voice[text] = speech(text)
        self._speech.put_nowait(samples)
        done = await asyncio.wait_for(self._spoken.get(), timeout=len(samples) / RATE + 10)
        await asyncio.sleep(max(0.0, done - time.monotonic()))
        turn = Turn(text=text, stopped_speaking=done)
        self.turns.append(turn)
        self._heard.clear()
        return turn

    # --- listening -------------------------------------------------------------------

    def _on_track(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                  participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self.agent_identity = participant.identity
            self._tasks.append(asyncio.create_task(self._listen(track), name="listen"))

    async def _listen(self, track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if len(samples) and np.sqrt(np.mean(samples**2)) > SPEECH_RMS:
                now = time.monotonic()
                self.last_loud = now
                if self.turns and self.turns[-1].agent_started is None \
                        and now > self.turns[-1].stopped_speaking:
                    self.turns[-1].agent_started = now
                self._heard.set()

    async def hear_reply(self, *, within: float = 20.0, quiet: float = 1.5) -> None:
        """Wait for the agent to start speaking, then for `quiet` seconds without its voice."""
        await asyncio.wait_for(self._heard.wait(), within)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.last_loud is not None
            if time.monotonic() - self.last_loud >= quiet:
                if self.turns:
                    self.turns[-1].agent_finished = self.last_loud
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the agent kept talking for a minute")
