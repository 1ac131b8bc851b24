"""`remotemedia batch` on a generated corpus: files/s and x real time for 1 and 2
workers on both engines, and the scaling efficiency from 1 to 2.

The corpus (cached in target/bench/) is --files FLAC files of --seconds seconds of
48 kHz stereo voiced bursts in noise; the pipeline is the demo's VAD pipeline. Each
configuration runs --rounds times in alternating order into a fresh output folder;
medians are reported. Ray (if installed) runs locally with num_cpus=2; its start-up
is outside the timed runs, its per-run scheduling inside.

    python benchmarks/bench_batch.py [--files 200] [--seconds 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import soundfile

from remotemedia import batch
from remotemedia.measure import voiced_bursts

ROOT = Path(__file__).resolve().parents[1]
VAD = ROOT / "examples" / "vad_pipeline.json"
RATE = 48000


def make_corpus(files: int, seconds: float) -> Path:
    folder = ROOT / "target" / "bench" / f"corpus_{files}x{seconds:g}s"
    if len(list(folder.glob("*.flac"))) != files:
        folder.mkdir(parents=True, exist_ok=True)
        blocks = [voiced_bursts(seconds, seed, RATE, noise=0.01) for seed in range(10)]
        for i in range(files):
            soundfile.write(folder / f"utt_{i:04d}.flac", blocks[i % len(blocks)], RATE)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    corpus = make_corpus(args.files, args.seconds)
    engines = ["local"]
    try:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        engines.append("ray")
    except ImportError:
        print("# Ray is not installed: the ray engine is left out")
    configs = [(engine, workers) for engine in engines for workers in (1, 2)]
    walls: dict[tuple, list[float]] = {c: [] for c in configs}
    for r in range(args.rounds):
        for engine, workers in configs if r % 2 == 0 else reversed(configs):
            out = Path(tempfile.mkdtemp(prefix="bench_batch_"))
            started = time.perf_counter()
            summary = batch.run(VAD, [corpus], out, engine=engine, workers=workers)
            walls[(engine, workers)].append(time.perf_counter() - started)
            assert summary["ok"] == args.files, summary
            shutil.rmtree(out)
    audio = args.files * args.seconds
    print(f"# {args.files} files x {args.seconds:g} s of 48 kHz stereo FLAC, VAD pipeline, median of {args.rounds} "
          f"rounds, alternating ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"Python {platform.python_version()})\n")
    print("| engine | workers | wall s | files/s | x real time | scaling 1 -> 2 |")
    print("|---|---|---|---|---|---|")
    for engine, workers in configs:
        wall = statistics.median(walls[(engine, workers)])
        scaling = ""
        if workers == 2:
            one = statistics.median(walls[(engine, 1)])
            scaling = f"{one / wall / 2:.0%}"
        print(f"| {engine} | {workers} | {wall:.1f} | {args.files / wall:.1f} | {audio / wall:.0f} | {scaling} |")


if __name__ == "__main__":
    main()
