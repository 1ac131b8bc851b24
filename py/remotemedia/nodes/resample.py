"""Resample reference: the FFT overlap-add resampler of the native node, in float64 numpy.

Same design as ``native/src/nodes/audio/resample/design.rs``: a Kaiser-windowed sinc
at the input rate (passband edge and stopband attenuation per preset, stopband from
the lower Nyquist, centre on a whole output frame). Blocks of ``hop_in`` input frames
are zero-padded to ``n_in``, transformed, multiplied by the filter's spectrum, cut or
zero-extended to the bins below the lower Nyquist, transformed back at ``n_out`` and
overlap-added. The first ``delay`` output frames are dropped, and ``flush`` ends the
stream at exactly ``ceil(n * target_rate / input_rate)`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, floor, gcd, pi

import numpy as np

from ..audio import Audio
from ..errors import InvalidInputError, NodeError
from ._common import BuiltinNode, audio_input, budget_samples, builtin, require_finite

# Passband edge (x the lower Nyquist), stopband attenuation (dB), and the least number
# of rate units of new input per unit of padding in a block, per preset.
PRESETS = {"fast": (0.80, 96.0, 7), "balanced": (0.90, 120.0, 3), "high": (0.91, 140.0, 3)}


@dataclass
class Design:
    n_in: int
    n_out: int
    hop_in: int
    hop_out: int
    delay: int
    taps: np.ndarray

    @property
    def latency(self) -> int:
        """Worst-case lag of output behind input, in output frames: a block plus the delay."""
        return self.hop_out + self.delay


def design(input_rate: int, output_rate: int, quality: str) -> Design:
    """The filter and block sizes for ``input_rate`` -> ``output_rate`` at ``quality``."""
    passband, attenuation, hop_per_pad = PRESETS[quality]
    g = gcd(input_rate, output_rate)
    unit_in, unit_out = input_rate // g, output_rate // g
    nyquist = min(input_rate, output_rate) / 2
    cutoff = (passband + 1.0) / 2.0 * nyquist / input_rate
    width = (1.0 - passband) * nyquist / input_rate
    min_taps = (attenuation - 7.95) / (2.285 * 2.0 * pi * width) + 1.0
    delay = ceil((min_taps - 1.0) / 2.0 * output_rate / input_rate)
    centre = delay * input_rate / output_rate
    t = np.arange(floor(2.0 * centre) + 1) - centre
    beta = 0.1102 * (attenuation - 8.7)
    window = np.i0(beta * np.sqrt(np.maximum(1.0 - (t / centre) ** 2, 0.0))) / np.i0(beta)
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * t) * window
    taps /= taps.sum()
    pad_units = -(-(len(taps) - 1) // unit_in)
    m = 1
    while m - min(pad_units, m) < max(hop_per_pad * pad_units, 1):
        m *= 2
    hop = m - pad_units
    return Design(m * unit_in, m * unit_out, hop * unit_in, hop * unit_out, delay, taps)


@builtin
class Resample(BuiltinNode):
    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        p, rate, rates = cls.filled(params), caps[3], cls.params_schema["properties"]["target_rate"]
        if p is None or rate is None or not rates["minimum"] <= rate <= rates["maximum"]:
            return None
        return 0 if rate == p["target_rate"] else design(rate, p["target_rate"], p["quality"]).latency

    def __init__(self, target_rate: int, quality: str):
        self.target_rate, self.quality = target_rate, quality
        self.rate = None

    def _start(self, rate: int, channels: int):
        rates = self.params_schema["properties"]["target_rate"]
        if not rates["minimum"] <= rate <= rates["maximum"]:
            raise NodeError(f"input rate {rate} Hz is outside {rates['minimum']}..={rates['maximum']}")
        if rate != self.target_rate:
            d = design(rate, self.target_rate, self.quality)
            budget_samples("Resample state", 2 * (d.n_in + d.n_out), channels)
            self.design = d
            kept = min(d.n_in, d.n_out) // 2
            self.response = np.fft.rfft(d.taps, d.n_in)[:kept] / d.n_in
            self.pending = np.zeros((0, channels))
            self.tail = np.zeros((d.n_out - d.hop_out, channels))
            self.to_skip = d.delay
            self.frames_in = self.frames_out = 0
        self.rate, self.channels = rate, channels

    def latency(self) -> int:
        """Worst-case lag of output behind input, in output frames (a block plus the filter delay)."""
        return 0 if self.rate in (None, self.target_rate) else self.design.latency

    def _blocks(self) -> np.ndarray:
        d, out = self.design, []
        kept = len(self.response)
        while len(self.pending) >= d.hop_in:
            spectrum = np.fft.rfft(self.pending[:d.hop_in], d.n_in, axis=0)[:kept] * self.response[:, None]
            full = np.zeros((d.n_out // 2 + 1, self.channels), complex)
            full[:kept] = spectrum
            y = np.fft.irfft(full, d.n_out, axis=0) * d.n_out
            y[:len(self.tail)] += self.tail
            self.tail = y[d.hop_out:]
            skip = min(self.to_skip, d.hop_out)
            self.to_skip -= skip
            out.append(y[skip:d.hop_out])
            self.frames_out += d.hop_out - skip
            self.pending = self.pending[d.hop_in:]
        return np.concatenate(out) if out else np.zeros((0, self.channels))

    def _audio(self, frames: np.ndarray):
        if len(frames) == 0:
            return None
        with np.errstate(over="ignore"):  # past f32's range is inf, as natively
            frames = frames.astype(np.float32)
        return Audio(np.ascontiguousarray(frames), self.target_rate)

    def configure(self, inputs):
        """Sizes the filter and its buffers for the negotiated rate and channels, when known."""
        _, _, channels, rate = inputs[0]
        if rate is not None and channels is not None:
            self._start(rate, channels)

    def process(self, data):
        audio_input(data, "Resample", f32=True)
        require_finite(data.samples, "Resample")
        if self.rate is None:
            self._start(data.sample_rate, data.channels)
        elif (data.sample_rate, data.channels) != (self.rate, self.channels):
            raise InvalidInputError(f"its input port in got a chunk of {data.sample_rate} Hz, {data.channels} ch; the "
                                    f"stream is {self.rate} Hz, {self.channels} ch (configured, or its first chunk)")
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
            pad = np.zeros((self.design.hop_in - len(self.pending) % self.design.hop_in, self.channels))
            self.pending = np.concatenate([self.pending, pad])
            out.append(self._blocks())
        frames = np.concatenate(out) if out else np.zeros((0, self.channels))
        last = self._audio(frames[:len(frames) - (self.frames_out - wanted)])
        self._start(self.rate, self.channels)  # the stream is over; a new one may follow
        return last
