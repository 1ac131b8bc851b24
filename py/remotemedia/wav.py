"""WAV file I/O with the standard library (PCM 16/24/32-bit)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .audio import Audio
from .convert import convert
from .errors import InvalidInputError


def read(path: str | Path) -> Audio:
    """Reads a PCM WAV file: 16-bit as int16, 24- and 32-bit as int32 (24-bit scaled up)."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise InvalidInputError(f"{path}: not a PCM WAV file ({e})") from None
    if width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.int16)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        samples = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24).astype(np.int32)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.int32)
    else:
        raise InvalidInputError(f"{path}: {8 * width}-bit WAV is not supported (use 16, 24 or 32-bit PCM)")
    return Audio(samples.reshape(-1, channels) if channels > 1 else samples, rate)


def write(path: str | Path, audio: Audio) -> None:
    """Writes 16-bit PCM (int16 as is; other formats converted by the package convention)
    or 32-bit PCM for int32."""
    samples = audio.samples if audio.samples.dtype == np.int32 else convert(audio.samples, np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(audio.channels)
        w.setsampwidth(samples.dtype.itemsize)
        w.setframerate(audio.sample_rate)
        w.writeframes(np.ascontiguousarray(samples).astype(samples.dtype.newbyteorder("<")).tobytes())
