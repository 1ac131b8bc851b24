"""Pure-Python twins of the example plugins' nodes: the oracles the plugins are tested
against, and the Python side of the mixed-pipeline test. Registered under the same
node types, so a pipeline on the Python runtime uses these instead of the plugins."""

from __future__ import annotations

import math

import numpy as np

import remotemedia as rm

F32 = np.float32


@rm.register_node
class Biquad(rm.Node):
    """RBJ cookbook biquad, transposed direct form II in double precision (as biquad.c)."""

    node_type = "Biquad"

    def __init__(self, type: str = "lowpass", frequency_hz: float = 1000.0, q: float = 0.7071067811865476,
                 gain_db: float = 0.0):
        self.kind, self.f0, self.q, self.gain_db = type, float(frequency_hz), float(q), float(gain_db)
        self.rate, self.state = 0, None

    def _design(self, rate: int) -> None:
        a_lin = 10.0 ** (self.gain_db / 40.0)
        w0 = 2.0 * math.pi * self.f0 / rate
        cw, alpha = math.cos(w0), math.sin(w0) / (2.0 * self.q)
        b0, b1, b2, a0, a1, a2 = {
            "lowpass": ((1 - cw) / 2, 1 - cw, (1 - cw) / 2, 1 + alpha, -2 * cw, 1 - alpha),
            "highpass": ((1 + cw) / 2, -(1 + cw), (1 + cw) / 2, 1 + alpha, -2 * cw, 1 - alpha),
            "bandpass": (alpha, 0.0, -alpha, 1 + alpha, -2 * cw, 1 - alpha),
            "notch": (1.0, -2 * cw, 1.0, 1 + alpha, -2 * cw, 1 - alpha),
            "peaking": (1 + alpha * a_lin, -2 * cw, 1 - alpha * a_lin, 1 + alpha / a_lin, -2 * cw, 1 - alpha / a_lin),
        }[self.kind]
        self.b = [b0 / a0, b1 / a0, b2 / a0]
        self.a = [a1 / a0, a2 / a0]
        self.rate = rate

    def process(self, audio: rm.Audio) -> rm.Audio:
        x = audio.samples if audio.samples.ndim == 2 else audio.samples[:, None]
        if audio.sample_rate != self.rate:
            self._design(audio.sample_rate)
        if self.state is None or len(self.state) != x.shape[1]:
            self.state = [[0.0, 0.0] for _ in range(x.shape[1])]
        (b0, b1, b2), (a1, a2) = self.b, self.a
        y = np.empty_like(x)
        for ch in range(x.shape[1]):
            s1, s2 = self.state[ch]
            for i, v in enumerate(x[:, ch].astype(np.float64).tolist()):
                out = b0 * v + s1
                s1 = b1 * v - a1 * out + s2
                s2 = b2 * v - a2 * out
                y[i, ch] = out
            self.state[ch] = [s1, s2]
        return rm.Audio(y.reshape(audio.samples.shape), audio.sample_rate)


@rm.register_node
class NoiseGate(rm.Node):
    """The noise gate of plugins/examples/noise-gate, in the same f32 arithmetic."""

    node_type = "NoiseGate"

    def __init__(self, threshold_db: float = -40.0, floor_db: float = -30.0, attack_ms: float = 5.0,
                 release_ms: float = 50.0):
        self.threshold = F32(10.0 ** (threshold_db / 20.0))
        self.floor = F32(10.0 ** (floor_db / 20.0))
        self.attack_ms, self.release_ms = attack_ms, release_ms
        self.envelope, self.gain = F32(0.0), self.floor

    def process(self, audio: rm.Audio) -> rm.Audio:
        rate = audio.sample_rate
        attack = F32(math.exp(-1.0 / (self.attack_ms * 1e-3 * rate)))
        release = F32(math.exp(-1.0 / (self.release_ms * 1e-3 * rate)))
        x = audio.samples if audio.samples.ndim == 2 else audio.samples[:, None]
        y = np.empty_like(x)
        env, gain, one = self.envelope, self.gain, F32(1.0)
        for i, frame in enumerate(x):
            peak = F32(np.abs(frame).max())
            c = attack if peak > env else release
            env = F32(peak + c * F32(env - peak))
            target = one if env >= self.threshold else self.floor
            c = attack if target > gain else release
            gain = F32(target + c * F32(gain - target))
            y[i] = frame * gain
        self.envelope, self.gain = env, gain
        return rm.Audio(y.reshape(audio.samples.shape), audio.sample_rate)
