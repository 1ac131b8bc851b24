"""Audio files read and written in blocks, so memory stays flat whatever their length.

Through ``soundfile`` (libsndfile): WAV of every subtype, FLAC, OGG/Vorbis, Opus and
MP3 where the installed libsndfile has them; the format is taken from the file when
reading and from the extension when writing. Without ``soundfile`` the standard
library's ``wave`` module serves PCM WAV (16, 24 and 32-bit) alone.

Samples keep their nature: 16-bit PCM reads as int16, 24/32-bit PCM as int32 (24-bit
scaled to full 32-bit range), float files as float32 (float64 for 64-bit float), and
lossy or other formats as float32.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .audio import Audio
from .convert import convert
from .errors import InvalidInputError

try:
    import soundfile
except (ImportError, OSError):  # not installed, or libsndfile missing
    soundfile = None

#: Frames per block when reading: 1 s at 48 kHz.
DEFAULT_BLOCK_FRAMES = 48_000

# soundfile subtype -> the dtype read; anything else reads as float32.
_READ_DTYPE = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32", "FLOAT": "float32", "DOUBLE": "float64",
               "PCM_S8": "int16", "PCM_U8": "int16"}


class Reader:
    """An open audio file: ``sample_rate``, ``channels``, ``frames`` (None if unknown),
    ``dtype``; iterate :meth:`blocks` for :class:`Audio` of up to ``block_frames``."""

    def __init__(self, path: str | Path):
        self.path = _path(path)
        if soundfile is not None:
            try:
                self._sf = soundfile.SoundFile(self.path)
            except (RuntimeError, OSError, ValueError, TypeError, soundfile.LibsndfileError) as e:
                raise InvalidInputError(f"{self.path}: cannot read this audio file ({e})") from None
            self.sample_rate, self.channels = self._sf.samplerate, self._sf.channels
            self.frames = self._sf.frames if self._sf.seekable() else None
            self.dtype = np.dtype(_READ_DTYPE.get(self._sf.subtype, "float32"))
            self._wave = None
        else:
            try:
                self._wave = wave.open(self.path, "rb")
            except (wave.Error, EOFError, OSError) as e:
                raise InvalidInputError(f"{self.path}: not a PCM WAV file ({e}); install soundfile for other formats") from None
            self._width = self._wave.getsampwidth()
            if self._width not in (2, 3, 4):
                raise InvalidInputError(f"{self.path}: {8 * self._width}-bit WAV is not supported without soundfile")
            self.sample_rate, self.channels = self._wave.getframerate(), self._wave.getnchannels()
            self.frames = self._wave.getnframes()
            self.dtype = np.dtype(np.int16 if self._width == 2 else np.int32)
            self._sf = None

    @property
    def duration(self) -> float | None:
        """Seconds of audio, or None when the file does not say."""
        return None if self.frames is None else self.frames / self.sample_rate

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[Audio]:
        """The file from its start, in blocks of ``block_frames`` (the last may be shorter)."""
        if self._sf is not None:
            if self._sf.seekable():
                self._sf.seek(0)
            for block in self._sf.blocks(blocksize=block_frames, dtype=self.dtype.name, always_2d=True):
                yield self._audio(block)
        else:
            self._wave.rewind()
            while raw := self._wave.readframes(block_frames):
                yield self._audio(_pcm(raw, self._width).reshape(-1, self.channels))

    def read(self, start: float, end: float, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[Audio]:
        """The audio from ``start`` to ``end`` seconds, in blocks."""
        first, last = round(start * self.sample_rate), round(end * self.sample_rate)
        if self.frames is not None:
            last = min(last, self.frames)
        if self._sf is not None:
            self._sf.seek(first)
        else:
            self._wave.setpos(first)
        while first < last:
            n = min(block_frames, last - first)
            if self._sf is not None:
                block = self._sf.read(n, dtype=self.dtype.name, always_2d=True)
            else:
                block = _pcm(self._wave.readframes(n), self._width).reshape(-1, self.channels)
            if len(block) == 0:
                return
            first += len(block)
            yield self._audio(block)

    def _audio(self, block: np.ndarray) -> Audio:
        samples = block[:, 0] if self.channels == 1 else block
        return Audio(np.ascontiguousarray(samples), self.sample_rate)

    def close(self) -> None:
        (self._sf or self._wave).close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _path(path) -> str:
    """A file path given as ``str`` or ``os.PathLike``, checked."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"an audio file path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\0" in text:
        raise InvalidInputError(f"not a usable file path: {text!r}")
    return text


def _pcm(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes as int16 (16-bit) or int32 (24-bit scaled up, 32-bit)."""
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.int16)
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        return b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24
    return np.frombuffer(raw, "<i4").astype(np.int32)


class Writer:
    """An audio file written block by block; format from the extension (WAV only
    without soundfile). Opened on the first block, whose rate and channels it keeps."""

    def __init__(self, path: str | Path):
        self.path = _path(path)
        self._file = None
        self.frames = 0

    def write(self, audio: Audio) -> None:
        if self._file is None:
            self._open(audio)
        elif (audio.sample_rate, audio.channels) != (self.sample_rate, self.channels):
            raise InvalidInputError(f"{self.path}: audio changed from {self.sample_rate} Hz x {self.channels} ch to "
                                    f"{audio.sample_rate} Hz x {audio.channels} ch mid-file")
        samples = audio.samples
        if self._wave is not None:
            data = samples if samples.dtype == self._dtype else convert(samples, self._dtype)
            self._wave.writeframes(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
        else:
            self._file.write(samples)
        self.frames += audio.frames

    def _open(self, audio: Audio) -> None:
        self.sample_rate, self.channels = audio.sample_rate, audio.channels
        self._wave = None
        if soundfile is not None:
            subtype = _subtype(self.path, audio.samples.dtype)
            try:
                self._file = soundfile.SoundFile(self.path, "w", samplerate=audio.sample_rate, channels=audio.channels,
                                                 subtype=subtype)
            except (RuntimeError, ValueError, TypeError, OSError, soundfile.LibsndfileError) as e:
                raise InvalidInputError(f"{self.path}: cannot write this audio format ({e})") from None
            return
        if Path(self.path).suffix.lower() != ".wav":
            raise InvalidInputError(f"{self.path}: only .wav can be written without soundfile")
        self._dtype = np.dtype(np.int32 if audio.samples.dtype == np.int32 else np.int16)
        self._wave = self._file = wave.open(self.path, "wb")
        self._wave.setnchannels(audio.channels)
        self._wave.setsampwidth(self._dtype.itemsize)
        self._wave.setframerate(audio.sample_rate)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _subtype(path: str, dtype: np.dtype) -> str | None:
    """The file subtype that keeps ``dtype`` where the format allows; None: the format's default."""
    fmt = Path(path).suffix.lstrip(".").upper()
    if fmt in ("WAV", "AIFF", "AU", "CAF", "W64", "RF64"):
        return {"int16": "PCM_16", "int32": "PCM_32", "float32": "FLOAT", "float64": "DOUBLE"}[np.dtype(dtype).name]
    if fmt == "FLAC":
        return "PCM_16" if np.dtype(dtype) == np.int16 else "PCM_24"
    return None


def read(path: str | Path) -> Audio:
    """A whole file as one :class:`Audio` (for short files; stream long ones with :class:`Reader`)."""
    with Reader(path) as r:
        blocks = [b.samples for b in r.blocks()]
        if not blocks:
            return Audio(np.zeros((0, r.channels) if r.channels > 1 else 0, r.dtype), r.sample_rate)
        return Audio(np.concatenate(blocks), r.sample_rate)


def write(path: str | Path, audio: Audio) -> None:
    """Writes ``audio`` to ``path`` in the format of its extension."""
    with Writer(path) as w:
        w.write(audio)
