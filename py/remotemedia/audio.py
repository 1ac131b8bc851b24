"""`Audio`: a numpy array of samples plus its sample rate."""

from __future__ import annotations

import numpy as np

from ._contract import MAX_CHANNELS, MAX_SAMPLE_RATE, SAMPLE_FORMATS
from .errors import InvalidInputError

#: The numpy dtype of each sample format of the contract (``f32`` is float32, ``i16`` int16, …).
DTYPE_OF = {name: np.dtype({"f": "float", "i": "int"}[name[0]] + name[1:]) for name in SAMPLE_FORMATS}
#: The C value (``RmSampleFormat``) of each supported dtype, and the dtype of each C value.
FORMAT_OF = {DTYPE_OF[name]: code for name, code in SAMPLE_FORMATS.items()}
DTYPES = {code: dtype for dtype, code in FORMAT_OF.items()}


class Audio:
    """Interleaved audio: ``samples`` has shape (frames,) for mono or (frames, channels).

    The array is kept as given (no copy). A (frames, 1) array is viewed as (frames,), so
    mono audio has one shape everywhere.
    """

    __slots__ = ("samples", "sample_rate")

    def __init__(self, samples, sample_rate: int):
        self.samples = samples
        self.sample_rate = sample_rate

    def __setattr__(self, name: str, value) -> None:
        """Every assignment is checked as construction checks it, so an ``Audio`` is
        always one the runtimes take (or the error is an InvalidInputError now)."""
        if name == "samples":
            value = _checked_samples(value)
        elif name == "sample_rate":
            value = _checked_rate(value)
        else:
            raise InvalidInputError(f"Audio has no attribute '{name}' to set (it has samples and sample_rate)")
        object.__setattr__(self, name, value)

    @classmethod
    def _trusted(cls, samples: np.ndarray, sample_rate: int) -> Audio:
        """An Audio of samples the native runtime produced (already checked): no checks."""
        audio = object.__new__(cls)
        object.__setattr__(audio, "samples", samples)
        object.__setattr__(audio, "sample_rate", sample_rate)
        return audio

    def check_layout(self) -> None:
        """Raises InvalidInputError unless the samples are C-contiguous and aligned, as
        every runtime requires (the native one reads them in place)."""
        flags = self.samples.flags
        if not (flags.c_contiguous and flags.aligned):
            raise InvalidInputError("samples must be C-contiguous and aligned (np.ascontiguousarray copies)")

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else self.samples.shape[1]

    @property
    def frames(self) -> int:
        return self.samples.shape[0]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def __eq__(self, other):
        return (isinstance(other, Audio) and self.sample_rate == other.sample_rate
                and self.samples.dtype == other.samples.dtype and np.array_equal(self.samples, other.samples))

    def __repr__(self):
        return f"Audio({self.frames} frames x {self.channels} ch, {self.samples.dtype}, {self.sample_rate} Hz)"


def _checked_samples(samples) -> np.ndarray:
    try:
        samples = np.asarray(samples)
    except (TypeError, ValueError) as e:  # ragged lists and other non-arrays
        raise InvalidInputError(f"samples must be a numpy array or a list of numbers: {e}") from None
    if samples.dtype not in FORMAT_OF:
        raise InvalidInputError(f"unsupported dtype {samples.dtype}; use {', '.join(str(d) for d in FORMAT_OF)}")
    if samples.ndim == 2 and samples.shape[1] == 1:
        samples = samples.reshape(-1)
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[1] == 0):
        raise InvalidInputError(f"samples must have shape (frames,) or (frames, channels), got {samples.shape}")
    if samples.ndim == 2 and samples.shape[1] > MAX_CHANNELS:
        raise InvalidInputError(f"{samples.shape[1]} channels is more than {MAX_CHANNELS}")
    return samples


def _checked_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidInputError(f"sample_rate must be an integer from 1 to {MAX_SAMPLE_RATE}, got {sample_rate!r}")
    return int(sample_rate)
