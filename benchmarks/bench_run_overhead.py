"""Overhead of one Pipeline.run (and run_into) on a tiny input: native vs the
pure-Python executor, and of a stream push + pull (and pull_into); then the CPU of
streaming VAD against one-shot VAD.

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
    out = np.empty(frames, np.float32)
    runs["native PassThrough run_into"] = lambda p=pipes["native PassThrough"]: p.run_into(audio, out)
    runs["numpy x*gain alone"] = lambda: x * factor
    runs["bare cffi call (rm_abi_version)"] = lib.rm_abi_version
    native = pipes["native PassThrough"]._compile()
    outputs = ffi.new("RmOutputs **")

    def raw():
        lib.rm_pipeline_run(native.ptr, ffi.from_buffer(x), x.size, 0, 1, 16000, outputs)
        lib.rm_outputs_free(outputs[0])

    runs["raw cffi rm_pipeline_run + free"] = raw
    stream = rm.Pipeline(runtime="native").add_node("n", "PassThrough").stream()

    def push_pull():
        stream.push(audio)
        stream.pull()

    runs["native stream push + pull, PassThrough"] = push_pull
    into = rm.Pipeline(runtime="native").add_node("n", "PassThrough").stream()

    def push_pull_into():
        into.push(audio)
        into.pull_into(out)

    runs["native stream push + pull_into, PassThrough"] = push_pull_into
    return runs


def vad_stream_vs_one_shot(seconds: int = 60, rounds: int = 7) -> tuple[float, float]:
    """CPU seconds of VAD over ``seconds`` of 16 kHz noise: one run, and a stream fed
    30 ms at a time with a pull after each push (medians, alternating order)."""
    x = (0.1 * np.random.default_rng(0).standard_normal(16000 * seconds)).astype(np.float32)
    p = rm.Pipeline(runtime="native").add_node("v", "VAD")
    chunks = [rm.Audio(x[i:i + 480], 16000) for i in range(0, len(x), 480)]

    def one_shot():
        p.run(rm.Audio(x, 16000))

    def streamed():
        with p.stream() as s:
            for c in chunks:
                s.push(c)
                s.pull()
            s.flush()
            s.pull()

    times: dict = {one_shot: [], streamed: []}
    for r in range(rounds + 1):
        for fn in (one_shot, streamed) if r % 2 else (streamed, one_shot):
            t0 = time.process_time()
            fn()
            if r:  # the first round warms up
                times[fn].append(time.process_time() - t0)
    return float(np.median(times[one_shot])), float(np.median(times[streamed]))


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
    run, mul, cffi = (result[k] for k in ("native PassThrough", "numpy x*gain alone", "bare cffi call (rm_abi_version)"))
    into = result["native PassThrough run_into"]
    print(f"native PassThrough run = {run / mul:.1f}x a numpy multiply, {run / cffi:.0f}x a bare cffi call; "
          f"run_into = {into / mul:.1f}x a numpy multiply, {into / cffi:.0f}x a bare cffi call; "
          f"python Gain run = {result['python Gain'] / mul:.1f}x a numpy multiply")
    one, streamed = vad_stream_vs_one_shot()
    print(f"VAD over 60 s at 16 kHz: one-shot {one * 1e3:.1f} ms CPU, streamed 30 ms at a time "
          f"{streamed * 1e3:.1f} ms CPU ({streamed / one:.2f}x; {(streamed - one) / 2000 * 1e6:.2f} µs more per chunk)")


if __name__ == "__main__":
    main()
