"""Resample reference: the block FFT resampler of the native node, in float64 numpy.

Same algorithm as rubato's FftFixedInOut (which the native node uses): fixed blocks of
``block_in`` frames are zero-padded to twice their length, transformed, multiplied by
the spectrum of a Blackman-Harris²-windowed sinc low-pass, truncated or zero-extended
to the output length, transformed back and overlap-added. The first ``block_out // 2``
output frames (the delay) are dropped, and ``flush`` ends the stream at exactly
``ceil(n * target_rate / input_rate)`` frames.
"""

from __future__ import annotations

from math import ceil, gcd

import numpy as np

from ..audio import Audio
from ..errors import NodeError
from ._common import BuiltinNode, audio_input, budget_samples, builtin, require_finite

BLOCK_AT_LOWER_RATE = {"fast": 64, "balanced": 256, "high": 1024}
# State per channel, in blocks of block_in + block_out samples, for the memory budget.
STATE_BLOCKS = 4
# Cutoff fit for the Blackman-Harris² window (from rubato's calculate_cutoff).
_K = (13.745202940783823, 121.73532586374934, 5964.163279612051)


def block_sizes(input_rate: int, output_rate: int, quality: str) -> tuple[int, int]:
    g = gcd(input_rate, output_rate)
    unit_in, unit_out = input_rate // g, output_rate // g
    units = -(-BLOCK_AT_LOWER_RATE[quality] // min(unit_in, unit_out))
    units += units % 2  # even blocks: the filter centre falls on a whole output frame
    return units * unit_in, units * unit_out


def _cutoff(n: int) -> float:
    return 1.0 / (_K[0] / n + _K[1] / n**2 + _K[2] / n**3 + 1.0)


def filter_spectrum(block_in: int, block_out: int) -> np.ndarray:
    """Spectrum (rfft of length 2*block_in) of the anti-aliasing filter."""
    cutoff = _cutoff(block_out) * block_out / block_in if block_in > block_out else _cutoff(block_in)
    x = np.arange(block_in)
    phase = 2 * np.pi * x / block_in
    window = (0.35875 - 0.48829 * np.cos(phase) + 0.14128 * np.cos(2 * phase) - 0.01168 * np.cos(3 * phase)) ** 2
    taps = window * np.sinc((x - block_in // 2) * cutoff)
    taps /= taps.sum()
    padded = np.zeros(2 * block_in)
    padded[:block_in] = taps / (2 * block_in)
    return np.fft.rfft(padded)


@builtin
class Resample(BuiltinNode):
    def __init__(self, target_rate: int, quality: str):
        self.target_rate, self.quality = target_rate, quality
        self.rate = None

    def _start(self, rate: int, channels: int):
        rates = self.params_schema["properties"]["target_rate"]
        if not rates["minimum"] <= rate <= rates["maximum"]:
            raise NodeError(f"input rate {rate} Hz is outside {rates['minimum']}..={rates['maximum']}")
        if rate != self.target_rate:
            block_in, block_out = block_sizes(rate, self.target_rate, self.quality)
            budget_samples("Resample state", STATE_BLOCKS * (block_in + block_out), channels)
        self.rate, self.channels = rate, channels
        if rate == self.target_rate:
            return
        self.block_in, self.block_out = block_in, block_out
        self.spectrum = filter_spectrum(self.block_in, self.block_out)
        self.pending = np.zeros((0, channels))
        self.overlap = np.zeros((self.block_out, channels))
        self.to_skip = self.block_out // 2
        self.frames_in = self.frames_out = 0

    def latency(self) -> int:
        """Worst-case lag of output behind input, in output frames (a block plus the filter delay)."""
        return 0 if self.rate in (None, self.target_rate) else self.block_out + self.block_out // 2

    def _blocks(self) -> np.ndarray:
        out = []
        bins = min(self.block_in, self.block_out) + (1 if self.block_in < self.block_out else 0)
        while len(self.pending) >= self.block_in:
            block = np.zeros((2 * self.block_in, self.channels))
            block[:self.block_in] = self.pending[:self.block_in]
            spec = np.fft.rfft(block, axis=0)[:bins] * self.spectrum[:bins, None]
            full = np.zeros((self.block_out + 1, self.channels), complex)
            full[:bins] = spec
            y = np.fft.irfft(full, 2 * self.block_out, axis=0) * (2 * self.block_out)
            produced = y[:self.block_out] + self.overlap
            self.overlap = y[self.block_out:]
            skip = min(self.to_skip, self.block_out)
            self.to_skip -= skip
            out.append(produced[skip:])
            self.frames_out += self.block_out - skip
            self.pending = self.pending[self.block_in:]
        return np.concatenate(out) if out else np.zeros((0, self.channels))

    def _audio(self, frames: np.ndarray):
        if len(frames) == 0:
            return None
        return Audio(np.ascontiguousarray(frames.astype(np.float32)), self.target_rate)

    def process(self, data):
        audio_input(data, "Resample", f32=True)
        require_finite(data.samples, "Resample")
        if self.rate is None:
            self._start(data.sample_rate, data.channels)
        elif (data.sample_rate, data.channels) != (self.rate, self.channels):
            raise NodeError("Resample got a chunk whose rate or channel count differs from the stream's first")
        if self.rate == self.target_rate:
            return data
        self.pending = np.concatenate([self.pending, data.samples.reshape(-1, self.channels)])
        self.frames_in += data.frames
        return self._audio(self._blocks())

    def flush(self):
        if self.rate is None or self.rate == self.target_rate:
            return None
        wanted = ceil(self.frames_in * self.target_rate / self.rate)
        out = []
        while self.frames_out < wanted:
            pad = np.zeros((self.block_in - len(self.pending), self.channels))
            self.pending = np.concatenate([self.pending, pad])
            out.append(self._blocks())
        frames = np.concatenate(out) if out else np.zeros((0, self.channels))
        last = self._audio(frames[:len(frames) - (self.frames_out - wanted)])
        self._start(self.rate, self.channels)  # the stream is over; a new one may follow
        return last
