"""Offline speech recognition for the e2e worker: CMU PocketSphinx with the English acoustic model
its wheel ships, and a small bigram language model of what callers say to a front desk.

Why not PocketSphinx's general language model: on espeak-ng's synthetic voice it gets almost no
word right ("do you have parking" -> "i think you're healthy") and takes ~2 s per sentence on a CI
core. A JSGF phrase grammar recognised well but its search blew up to tens of seconds on long
utterances. A bigram model built from a few dozen caller sentences (`tests.e2e.conversation.
CALLER_CORPUS`) decodes a sentence in ~0.2 s and still backs off to any word sequence over its
vocabulary, so what comes out is recognition of real audio: words can be missed or misheard.

Non-streaming: LiveKit's `stt.StreamAdapter` (added by AgentSession around any STT without
streaming, with the session's VAD) cuts the caller's audio into utterances and calls `recognize()`
once per utterance.
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # the rate of PocketSphinx's en-us acoustic model


def bigram_arpa(sentences: Sequence[str], *, discount: float = 0.5) -> str:
    """A bigram model in ARPA format: add-one unigrams, absolutely discounted bigrams backing
    off to them (Katz-style weights), so unseen word pairs keep a probability."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for sentence in sentences:
        words = ["<s>", *sentence.lower().split(), "</s>"]
        unigrams.update(words)
        bigrams.update(zip(words, words[1:], strict=False))
    vocab = sorted(unigrams)
    tokens = sum(c for w, c in unigrams.items() if w != "<s>")
    p1 = {w: (unigrams[w] + 1) / (tokens + len(vocab)) for w in vocab}
    p2: dict[tuple[str, str], float] = {}
    backoff = dict.fromkeys(vocab, 1.0)
    for first in vocab:
        followers = {b: c for (a, b), c in bigrams.items() if a == first}
        total = sum(followers.values())
        if not total:
            continue
        for second, count in followers.items():
            p2[(first, second)] = (count - discount) / total
        left = 1 - sum(p2[(first, second)] for second in followers)
        backoff[first] = left / (1 - sum(p1[second] for second in followers))
    lines = ["\\data\\", f"ngram 1={len(vocab)}", f"ngram 2={len(p2)}", "", "\\1-grams:"]
    lines += [f"{-99 if w == '<s>' else math.log10(p1[w]):.4f} {w} {math.log10(backoff[w]):.4f}"
              for w in vocab]
    lines += ["", "\\2-grams:"]
    lines += [f"{math.log10(p):.4f} {a} {b}" for (a, b), p in sorted(p2.items())]
    return "\n".join([*lines, "", "\\end\\", ""])


def vocabulary(corpus: Sequence[str]) -> set[str]:
    return {word for sentence in corpus for word in sentence.lower().split()}


def pronunciations(cmudict: Path, words: set[str]) -> str:
    """CMUdict's lines for `words` (alternative pronunciations included)."""
    lines = [line for line in cmudict.read_text().splitlines()
             if line.split(" ", 1)[0].split("(", 1)[0] in words]
    unknown = words - {line.split(" ", 1)[0].split("(", 1)[0] for line in lines}
    if unknown:
        raise ValueError(f"not in CMUdict, so not recognisable: {sorted(unknown)}")
    return "\n".join(lines) + "\n"


class _Recognizer:
    """One PocketSphinx decoder; it is not thread-safe, so decodes take turns."""

    def __init__(self, corpus: Sequence[str]) -> None:
        from pocketsphinx import Decoder, get_model_path

        self._lock = threading.Lock()
        model = Path(get_model_path()) / "en-us"
        with tempfile.TemporaryDirectory() as tmp:  # the decoder reads its models from files
            lm, words = Path(tmp) / "caller.arpa", Path(tmp) / "caller.dict"
            lm.write_text(bigram_arpa(corpus))
            # Only the model's words: loading all of CMUdict (135k words) takes over a second.
            words.write_text(pronunciations(model / "cmudict-en-us.dict", vocabulary(corpus)))
            self._decoder = Decoder(samprate=SAMPLE_RATE, hmm=str(model / "en-us"), lm=str(lm),
                                    dict=str(words), loglevel="ERROR")

    def decode(self, pcm16k: np.ndarray) -> tuple[str, float]:
        """(text, confidence in [0, 1]) of one utterance; ("", 0.0) when nothing matched."""
        with self._lock:
            d = self._decoder
            d.start_utt()
            d.process_raw(pcm16k.tobytes(), no_search=False, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
            if hyp is None or not hyp.hypstr:
                return "", 0.0
            text, posterior = hyp.hypstr, hyp.prob
        # The decoder gives the whole sentence's posterior; per word (geometric mean) it reads
        # like the word-level confidence other recognisers report.
        confidence = posterior ** (1 / len(text.split())) if posterior > 0 else 0.0
        return text, max(0.0, min(1.0, confidence))


def _mono_16k(frames: utils.AudioBuffer) -> np.ndarray:
    frame = rtc.combine_audio_frames(frames)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate == SAMPLE_RATE:
        return samples
    mono = rtc.AudioFrame(samples.tobytes(), frame.sample_rate, 1, len(samples))
    resampler = rtc.AudioResampler(frame.sample_rate, SAMPLE_RATE, num_channels=1)
    out = resampler.push(mono) + resampler.flush()
    return np.frombuffer(rtc.combine_audio_frames(out).data, dtype=np.int16) if out else samples[:0]


class PocketSphinxSTT(stt.STT):
    def __init__(self, *, corpus: Sequence[str], language: str = "en") -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._corpus = list(corpus)
        self._language = language
        self._recognizer: asyncio.Future[_Recognizer] | None = None

    @property
    def model(self) -> str:
        return "pocketsphinx/en-us"

    @property
    def provider(self) -> str:
        return "pocketsphinx"

    def prewarm(self) -> None:
        self._load()

    def _load(self) -> asyncio.Future[_Recognizer]:
        # Loading the acoustic model takes ~0.1 s: off the event loop, once per instance.
        if self._recognizer is None:
            self._recognizer = asyncio.ensure_future(asyncio.to_thread(_Recognizer, self._corpus))
        return self._recognizer

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        recognizer = await self._load()
        pcm = _mono_16k(buffer)
        text, confidence = await asyncio.to_thread(recognizer.decode, pcm)
        log.info("recognised %r (confidence %.2f, %.2f s of audio)", text, confidence,
                 len(pcm) / SAMPLE_RATE)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode(language or self._language), text=text,
                                         confidence=confidence,
                                         end_time=len(pcm) / SAMPLE_RATE)],
        )
