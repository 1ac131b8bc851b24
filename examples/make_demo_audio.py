"""Writes the demo input: 48 kHz stereo int16, deterministic (tone bursts over noise)."""

import argparse
from pathlib import Path

import numpy as np

from remotemedia import Audio, wav


def demo_audio(seconds: float = 30.0, rate: int = 48000) -> Audio:
    rng = np.random.default_rng(20261129)
    t = np.arange(int(seconds * rate)) / rate
    envelope = (np.sin(2 * np.pi * 0.25 * t) > 0.3).astype(np.float64)  # bursts, 1/4 Hz
    tone = 0.4 * np.sin(2 * np.pi * (220 + 110 * np.sin(2 * np.pi * 0.1 * t)) * t) * envelope
    left = tone + 0.02 * rng.standard_normal(t.size)
    right = 0.8 * tone + 0.02 * rng.standard_normal(t.size)
    stereo = np.stack([left, right], axis=1)
    return Audio(np.clip(np.rint(stereo * 32768), -32768, 32767).astype(np.int16), rate)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    audio = demo_audio(args.seconds)
    wav.write(args.output, audio)
    print(f"wrote {args.output}: {audio}")
