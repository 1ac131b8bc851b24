"""Cost of process isolation per 20 ms chunk: one stream push + pull through one node,
in this process vs in its own process (`"isolation": "process"`), for the built-in
PassThrough and the C Biquad plugin, on the native runtime.

Same method as bench_run_overhead.py (warm-up, alternating order, median of rounds).
Needs `make plugins` (target/plugins).

    python benchmarks/bench_isolation.py [--frames 320] [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import remotemedia as rm
from bench_run_overhead import run_cli

ROOT = Path(__file__).resolve().parents[1]


def contenders(frames: int) -> dict:
    rm.load_plugin(ROOT / "target/plugins/libbiquad.so")
    audio = rm.Audio(np.sin(np.arange(frames, dtype=np.float32) * 0.01).astype(np.float32), 16000)
    nodes = {"PassThrough": ("PassThrough", {}), "C plugin Biquad": ("Biquad", {"type": "lowpass", "frequency_hz": 1000.0})}
    runs = {}
    for name, (kind, params) in nodes.items():
        for isolation in ("in_process", "process"):
            stream = rm.Pipeline(runtime="native").add_node("n", kind, isolation=isolation, **params).stream()

            def step(s=stream):
                s.push(audio)
                s.pull()

            runs[f"{name}, {isolation}"] = step
    return runs


def main():
    if "--frames" not in sys.argv:
        sys.argv += ["--frames", "320"]  # 20 ms at 16 kHz
    result = run_cli(__doc__, contenders, "Process isolation: stream push + pull of a 20 ms chunk")
    for name in ("PassThrough", "C plugin Biquad"):
        extra = result[f"{name}, process"] - result[f"{name}, in_process"]
        print(f"\n{name}: isolation adds {extra:.2f} µs per chunk ({result[f'{name}, process'] / result[f'{name}, in_process']:.1f}x)")


if __name__ == "__main__":
    main()
