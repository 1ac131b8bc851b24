"""Streams synthetic 48 kHz int16 audio in 20 ms chunks from Python through
i16→f32 → Resample 16 kHz → VAD, on the native runtime and (shorter) on the
pure-Python runtime, in the same run.

Reports throughput as a multiple of real time, per-chunk overhead beyond node work
(the same push-and-pull loop through a one-node PassThrough pipeline, whose node does
~0.03 µs of work), and p50/p99 push-to-output latency (push of a chunk until its
outputs are pulled).

    python benchmarks/bench_streaming.py [--minutes 60] [--python-seconds 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import remotemedia as rm

RATE = 48000
CHUNK = RATE // 50  # 20 ms
MANIFEST = {"version": "1", "nodes": [
    {"id": "f32", "node_type": "FormatConverter", "params": {"format": "f32"}},
    {"id": "rs", "node_type": "Resample", "params": {"target_rate": 16000}},
    {"id": "vad", "node_type": "VAD"}],
    "connections": [{"from": "f32", "to": "rs"}, {"from": "rs", "to": "vad"}]}


def audio(seconds: float) -> np.ndarray:
    """Tone bursts over noise, int16, generated in one-minute blocks."""
    rng = np.random.default_rng(0)
    block = np.arange(RATE * 60) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 200 * block) * (np.sin(2 * np.pi * 0.3 * block) > 0)
    minutes = []
    for _ in range(int(np.ceil(seconds / 60))):
        minutes.append(np.rint((tone + 0.02 * rng.standard_normal(block.size)) * 32767).astype(np.int16))
    return np.concatenate(minutes)[:int(seconds * RATE)]


def loop(manifest: dict, runtime: str, chunks: list) -> tuple[float, np.ndarray]:
    """Seconds to push and pull every chunk, and each chunk's push-to-output latency (ns)."""
    p = rm.Pipeline.from_manifest(manifest, runtime=runtime)
    latencies = np.empty(len(chunks))
    with p.stream() as s:
        s.push(chunks[0])  # warm-up: plans FFTs, fills caches
        s.pull()
        s.flush()
        s.pull()
        started = time.perf_counter()
        for i, c in enumerate(chunks):
            t0 = time.perf_counter_ns()
            s.push(c)
            s.pull()
            latencies[i] = time.perf_counter_ns() - t0
        s.flush()
        s.pull()
        return time.perf_counter() - started, latencies


def stream(runtime: str, x: np.ndarray) -> dict:
    chunks = [rm.Audio(x[i:i + CHUNK], RATE) for i in range(0, len(x) - CHUNK + 1, CHUNK)]
    elapsed, latencies = loop(MANIFEST, runtime, chunks)
    bare, _ = loop({"version": "1", "nodes": [{"id": "p", "node_type": "PassThrough"}]}, runtime, chunks)
    seconds = len(x) / RATE
    return {"runtime": runtime, "audio_s": seconds, "elapsed_s": elapsed, "xrt": seconds / elapsed,
            "overhead_us": bare / len(chunks) * 1e6, "chunk_us": elapsed / len(chunks) * 1e6,
            "p50_us": np.percentile(latencies, 50) / 1e3, "p99_us": np.percentile(latencies, 99) / 1e3,
            "max_us": latencies.max() / 1e3}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--python-seconds", type=float, default=60)
    args = parser.parse_args()
    rows = [stream("native", audio(args.minutes * 60)), stream("python", audio(args.python_seconds))]
    print("| runtime | audio | wall | × real time | µs per chunk | overhead per chunk beyond node work (µs) "
          "| p50 latency (µs) | p99 latency (µs) | max (µs) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runtime']} | {r['audio_s']:.0f} s | {r['elapsed_s']:.2f} s | {r['xrt']:.0f} | {r['chunk_us']:.2f} "
              f"| {r['overhead_us']:.2f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['max_us']:.0f} |")


if __name__ == "__main__":
    main()
