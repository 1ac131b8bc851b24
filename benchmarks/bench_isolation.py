"""Cost of process isolation per 20 ms chunk: one stream push + pull through one node,
in this process vs in its own process (`"isolation": "process"`), for the built-in
PassThrough and the C Biquad plugin, on the native runtime.

Same method as bench_run_overhead.py (warm-up, alternating order, median of rounds):
chunks back to back. Then paced, as a live stream: 2 ms between chunks (so the child
sleeps and must be woken for each chunk), the median push + pull time of 500 chunks.
Needs `make plugins` (target/plugins).

    python benchmarks/bench_isolation.py [--frames 320] [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import statistics
import sys
import time
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


def paced(frames: int, gap_s: float = 0.002, chunks: int = 500) -> dict[str, float]:
    """Median µs of push + pull per chunk with ``gap_s`` of idle time between chunks."""
    audio = rm.Audio(np.zeros(frames, np.float32), 16000)
    out = {}
    for isolation in ("in_process", "process"):
        with rm.Pipeline(runtime="native").add_node("n", "PassThrough", isolation=isolation).stream() as s:
            times = []
            for _ in range(chunks):
                time.sleep(gap_s)
                started = time.perf_counter()
                s.push(audio)
                s.pull()
                times.append(time.perf_counter() - started)
        out[isolation] = statistics.median(times[50:]) * 1e6
    return out


def main():
    if "--frames" not in sys.argv:
        sys.argv += ["--frames", "320"]  # 20 ms at 16 kHz
    result = run_cli(__doc__, contenders, "Process isolation: stream push + pull of a 20 ms chunk")
    for name in ("PassThrough", "C plugin Biquad"):
        extra = result[f"{name}, process"] - result[f"{name}, in_process"]
        print(f"\n{name}: isolation adds {extra:.2f} µs per chunk ({result[f'{name}, process'] / result[f'{name}, in_process']:.1f}x)")
    live = paced(320)
    print(f"\npaced, 2 ms between chunks (PassThrough): in_process {live['in_process']:.1f} µs, process "
          f"{live['process']:.1f} µs per chunk: isolation adds {live['process'] - live['in_process']:.1f} µs")


if __name__ == "__main__":
    main()
