"""Speech for the phone leg of e2e tests: espeak-ng text -> 8 kHz G.711 u-law WAV.

SIPp's `rtp_stream` sends a file's bytes as RTP payload unchanged (it only skips the RIFF
header), so the file must already be PCMU at 8 kHz. espeak-ng only writes 22.05 kHz 16-bit
PCM, hence the resample and encode here (numpy, no audioop: it is gone in Python 3.13).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

RATE = 8000


def speak_pcm(text: str, *, voice: str = "en-us", wpm: int = 160) -> tuple[np.ndarray, int]:
    """int16 mono samples and their rate, as espeak-ng speaks `text`."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng not found; run .ci/build-servers.sh")
    out = subprocess.run(
        [espeak, "-v", voice, "-s", str(wpm), "--stdout", text], capture_output=True, check=True
    ).stdout
    # espeak-ng --stdout streams, so its RIFF/data sizes are placeholders (0x7ffff000):
    # take the rate from the fmt chunk and every byte after the data chunk header.
    if out[:4] != b"RIFF" or out[12:16] != b"fmt ":
        raise RuntimeError("espeak-ng did not write a WAV")
    channels, rate, _, _, bits = struct.unpack("<HIIHH", out[22:36])
    if (channels, bits) != (1, 16):
        raise RuntimeError(f"unexpected espeak-ng format: {channels} ch, {bits} bit")
    data = out.index(b"data", 36) + 8
    samples = np.frombuffer(out[data : len(out) - (len(out) - data) % 2], dtype="<i2")
    return samples, rate


def resample(samples: np.ndarray, src_rate: int, dst_rate: int = RATE) -> np.ndarray:
    """Low-pass below the new Nyquist (windowed sinc), then linear interpolation."""
    x = samples.astype(np.float64)
    if dst_rate < src_rate:
        cutoff = 0.45 * dst_rate / src_rate  # cycles per input sample
        n = np.arange(-64, 65)
        taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(len(n))
        x = np.convolve(x, taps / taps.sum(), mode="same")
    t_out = np.arange(int(len(x) * dst_rate / src_rate)) * (src_rate / dst_rate)
    y = np.interp(t_out, np.arange(len(x)), x)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 u-law, bit-exact with CPython's audioop.lin2ulaw (Sun's g711.c on 14 bits)."""
    v = samples.astype(np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 0x21
    seg = np.floor(np.log2(mag)).astype(np.int32) - 5  # 0..8
    uval = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (seg + 1)) & 0x0F))
    return (uval ^ mask).astype(np.uint8).tobytes()


def write_ulaw_wav(path: Path | str, payload: bytes, rate: int = RATE) -> Path:
    """A WAVE_FORMAT_MULAW (7) mono file; the `wave` module only writes PCM."""
    fmt = struct.pack("<HHIIHH", 7, 1, rate, rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload
    path = Path(path)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def speak_ulaw_wav(text: str, path: Path | str, *, lead_silence: float = 0.5) -> Path:
    """`text` as an 8 kHz u-law WAV, with leading silence so VAD sees the onset."""
    samples, rate = speak_pcm(text)
    pcm = resample(samples, rate)
    pcm = np.concatenate([np.zeros(int(lead_silence * RATE), np.int16), pcm])
    return write_ulaw_wav(path, ulaw_encode(pcm))
