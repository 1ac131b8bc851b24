"""Measurements of node quality, shared by the tests and the benchmark scripts.

A resampler here is any function ``f(x: float32 mono array) -> float32 array`` that
converts from ``in_rate`` to ``out_rate`` with output aligned to the input.
"""

from __future__ import annotations

import numpy as np


def tone_gain_db(resample, in_rate: int, out_rate: int, freq: float, seconds: float = 1.0) -> float:
    """Output level of a 0.5-amplitude tone, in dB relative to the input.

    Below the output Nyquist this is the passband gain at ``freq`` (least-squares fit of
    a sinusoid at ``freq``); above it, the level of everything that came through, i.e.
    the aliasing of a tone that should have been removed. Edges are excluded.
    """
    t = np.arange(int(in_rate * seconds)) / in_rate
    y = np.asarray(resample((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)), np.float64).reshape(-1)
    mid = slice(len(y) // 4, 3 * len(y) // 4)
    if freq < out_rate / 2:
        tt = np.arange(len(y)) / out_rate
        basis = np.stack([np.sin(2 * np.pi * freq * tt), np.cos(2 * np.pi * freq * tt)], 1)[mid]
        coef, *_ = np.linalg.lstsq(basis, y[mid], rcond=None)
        level = np.hypot(*coef)
    else:
        level = np.sqrt(2 * np.mean(y[mid] ** 2))
    return float(20 * np.log10(max(level, 1e-12) / 0.5))


def passband_ripple_db(resample, in_rate: int, out_rate: int, edge: float = 0.9, points: int = 25) -> float:
    """Largest |gain| in dB for tones from 20 Hz to ``edge`` x the lower Nyquist."""
    nyq = min(in_rate, out_rate) / 2
    return max(abs(tone_gain_db(resample, in_rate, out_rate, f)) for f in np.linspace(20, edge * nyq, points))


def worst_alias_db(resample, in_rate: int, out_rate: int, points: int = 25) -> float:
    """For downsampling: the loudest output of tones between the output Nyquist (+1%)
    and the input Nyquist. For upsampling there is nothing to alias: -inf."""
    if out_rate >= in_rate:
        return float("-inf")
    freqs = np.linspace(out_rate / 2 * 1.01, in_rate / 2 * 0.99, points)
    return max(tone_gain_db(resample, in_rate, out_rate, f) for f in freqs)


def sweep_snr_db(resample, in_rate: int, out_rate: int, seconds: float = 2.0) -> float:
    """SNR of a resampled log sweep (20 Hz to 0.9 x the lower Nyquist) against the same
    sweep computed analytically at the output rate; 5% at each end excluded."""
    f0, f1 = 20.0, 0.9 * min(in_rate, out_rate) / 2
    k = np.log(f1 / f0) / seconds

    def sweep(rate):
        t = np.arange(int(rate * seconds)) / rate
        return 0.5 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)

    y = np.asarray(resample(sweep(in_rate).astype(np.float32)), np.float64).reshape(-1)
    ref = sweep(out_rate)[:len(y)]
    edge = len(ref) // 20
    err = y[edge:len(ref) - edge] - ref[edge:-edge]
    return float(10 * np.log10(np.sum(ref[edge:-edge] ** 2) / max(np.sum(err ** 2), 1e-30)))


def voiced_bursts(seconds: float, seed: int, rate: int = 48000, noise: float = 0.002) -> np.ndarray:
    """Stereo int16 test speech: voiced bursts (harmonic stacks with a syllable-rate
    envelope, 0.6 to 1.2 s long, 0.5 to 1 s apart) in white noise of level ``noise``;
    the right channel is the left at 0.8."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = noise * rng.standard_normal(len(t))
    at = 0.5
    while at < seconds - 1.3:
        length = rng.uniform(0.6, 1.2)
        on = (t >= at) & (t < at + length)
        phase = 2 * np.pi * rng.uniform(110, 200) * t[on]
        x[on] += 0.15 * sum(np.sin(h * phase) / h for h in range(1, 30)) * (0.5 + 0.5 * np.sin(8 * np.pi * t[on]) ** 2)
        at += length + rng.uniform(0.5, 1.0)
    mono = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    return np.stack([mono, (mono * 0.8).astype(np.int16)], axis=1)
