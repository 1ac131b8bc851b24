"""Cost of the plugin boundary: one Pipeline.run on 480 float32 samples through one node,
built in vs loaded from a plugin, and the C Biquad plugin against scipy's lfilter.

Same method as bench_run_overhead.py (warm-up, alternating order, median of rounds).
Needs `make plugins` (target/plugins, target/test-plugins) and scipy.

    python benchmarks/bench_plugins.py [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

import remotemedia as rm
from bench_run_overhead import run_cli

ROOT = Path(__file__).resolve().parents[1]


@rm.register_node
class PyPass(rm.Node):
    """Python pass-through, called back from the native executor."""

    node_type = "BenchPyPass"

    def process(self, data):
        return data


def contenders(frames: int) -> dict:
    for lib in ("target/plugins/libbiquad.so", "target/test-plugins/libremotemedia_test_panicky.so"):
        rm.load_plugin(ROOT / lib)
    x = np.sin(np.arange(frames, dtype=np.float32) * 0.01).astype(np.float32)
    audio = rm.Audio(x, 16000)
    nodes = {
        "built-in PassThrough (no copy)": ("PassThrough", {}),
        "Rust plugin pass-through (copies)": ("Panicky", {"panic_frames": 10**9}),
        "Python node pass-through": ("BenchPyPass", {}),
        "C plugin Biquad lowpass": ("Biquad", {"type": "lowpass", "frequency_hz": 1000.0}),
    }
    runs = {}
    for name, (kind, params) in nodes.items():
        p = rm.Pipeline(runtime="native").add_node("n", kind, **params)
        runs[name] = lambda p=p: p.run(audio)
    b, a = signal.iirfilter(2, 1000.0, btype="lowpass", ftype="butter", fs=16000)
    zi = signal.lfilter_zi(b, a) * 0.0

    def lfilter():
        nonlocal zi
        _, zi = signal.lfilter(b, a, x, zi=zi)

    runs["scipy lfilter (same filter, state kept)"] = lfilter
    return runs


def main():
    result = run_cli(__doc__, contenders, "Plugin boundary: Pipeline.run")
    base = result["built-in PassThrough (no copy)"]
    print(f"\nplugin boundary: +{result['Rust plugin pass-through (copies)'] - base:.2f} µs per call over a built-in "
          f"node; a Python node costs +{result['Python node pass-through'] - base:.2f} µs. "
          f"C Biquad run / scipy lfilter call = "
          f"{result['C plugin Biquad lowpass'] / result['scipy lfilter (same filter, state kept)']:.2f}")


if __name__ == "__main__":
    main()
