"""Overhead of one Pipeline.run on a tiny input: native vs the pure-Python executor.

Every contender is warmed up first; rounds alternate the order of contenders; the
figure reported is the median over rounds of the mean time per call in a round.

    python benchmarks/bench_run_overhead.py [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import remotemedia as rm
from remotemedia.native import ffi, lib


def contenders(frames: int):
    x = np.sin(np.arange(frames, dtype=np.float32) * 0.01).astype(np.float32)
    audio = rm.Audio(x, 16000)
    pipes = {
        f"native {kind}": rm.Pipeline(runtime="native").add_node("n", kind, **params)
        for kind, params in (("PassThrough", {}), ("Gain", {"gain_db": -6.0}))
    }
    pipes["python Gain"] = rm.Pipeline(runtime="python").add_node("n", "Gain", gain_db=-6.0)
    factor = np.float32(10 ** (-6 / 20))
    runs = {name: (lambda p=p: p.run(audio)) for name, p in pipes.items()}
    runs["numpy x*gain alone"] = lambda: x * factor
    runs["bare cffi call (rm_abi_version)"] = lib.rm_abi_version
    native = pipes["native PassThrough"]._compile()
    out = ffi.new("RmOutputs **")

    def raw():
        lib.rm_pipeline_run(native.ptr, ffi.from_buffer(x), x.size, 0, 1, 16000, out)
        lib.rm_outputs_free(out[0])

    runs["raw cffi rm_pipeline_run + free"] = raw
    return runs


def measure(runs: dict, rounds: int, calls: int) -> dict[str, float]:
    for fn in runs.values():  # warm-up: lazy imports, caches, allocator pools
        for _ in range(calls // 10):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            fn = runs[name]
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter_ns() - t0) / calls / 1000)
    return {name: float(np.median(v)) for name, v in samples.items()}


def run_cli(doc: str, contenders, title: str) -> dict[str, float]:
    """Parses --frames/--rounds/--calls, measures ``contenders(frames)`` and prints the
    table under ``title``; returns µs per call by contender."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=480)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    result = measure(contenders(args.frames), args.rounds, args.calls)
    width = max(36, *map(len, result))
    print(f"# {title}, {args.frames} float32 samples, one node "
          f"({platform.python_version()}, numpy {np.__version__}, {platform.machine()})")
    print(f"# median of {args.rounds} rounds x {args.calls} calls, alternating order\n")
    print(f"| {'contender':<{width}} | {'µs per call':>11} |")
    print(f"|{'-' * (width + 2)}|{'-' * 13}|")
    for name, us in result.items():
        print(f"| {name:<{width}} | {us:>11.3f} |")
    return result


def main():
    result = run_cli(__doc__, contenders, "Pipeline.run overhead")
    ratio = result["python Gain"] / result["native Gain"]
    print(f"\nnative Gain is {ratio:.2f}x faster than python Gain. PassThrough does ~0.03 µs of work "
          f"(criterion), so its run time, {result['native PassThrough']:.2f} µs, is the per-run overhead.")


if __name__ == "__main__":
    main()
