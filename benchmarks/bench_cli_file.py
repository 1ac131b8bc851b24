"""`remotemedia run` on a long recording: wall time, x real time and peak memory.

Generates (once, cached in target/bench/) a 48 kHz stereo 16-bit FLAC of voiced bursts
in noise, then runs the demo's VAD pipeline on it through the command line, streaming,
with RTTM segments out, in a child process whose peak RSS is read from the kernel. For
scale, the same file is also only decoded (soundfile, same blocks) in another child.
Each is run --rounds times, alternating; medians are reported.

    python benchmarks/bench_cli_file.py [--minutes 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import soundfile

from remotemedia.measure import voiced_bursts

ROOT = Path(__file__).resolve().parents[1]
RATE = 48000


def recording(minutes: float) -> Path:
    path = ROOT / "target" / "bench" / f"long_{minutes:g}min.flac"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        blocks = [voiced_bursts(6.0, seed, RATE, noise=0.01) for seed in range(16)]
        with soundfile.SoundFile(path, "w", RATE, 2, "PCM_16") as f:
            for i in range(int(minutes * 10)):
                f.write(blocks[i % len(blocks)])
    return path


def child(code: str) -> tuple[float, float, str]:
    """Runs ``code`` in a fresh interpreter: (wall seconds, peak RSS MB, its stdout)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return wall, float(done.stdout.split()[-1]) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = recording(args.minutes)
    seconds = soundfile.info(path).duration
    rttm = path.with_suffix(".rttm")
    # VmHWM, the child's own peak RSS (ru_maxrss would include the parent's at fork).
    peak = "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))"
    contenders = {
        "remotemedia run (decode + VAD pipeline + RTTM)": (
            f"from remotemedia import cli\n"
            f"assert cli.main(['run', {str(ROOT / 'examples' / 'vad_pipeline.json')!r}, '-i', {str(path)!r}, "
            f"'--segments', {str(rttm)!r}, '--no-progress']) == 0\n{peak}"),
        "decode only (soundfile, same 1 s blocks)": (
            f"import soundfile\n"
            f"for b in soundfile.blocks({str(path)!r}, blocksize={RATE}, dtype='int16'): pass\n{peak}"),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for r in range(args.rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            wall, rss, _ = child(contenders[name])
            results[name].append((wall, rss))
    print(f"# {args.minutes:g} min of 48 kHz stereo FLAC ({path.stat().st_size / 2**20:.0f} MB), "
          f"median of {args.rounds} rounds, alternating ({platform.python_version()}, {platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')})\n")
    print("| contender | wall s | x real time | peak RSS MB |")
    print("|---|---|---|---|")
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(m for _, m in runs)
        summary[name] = {"wall_s": wall, "x_real_time": seconds / wall, "peak_rss_mb": rss}
        print(f"| {name} | {wall:.1f} | {seconds / wall:.0f} | {rss:.0f} |")
    segments = len(rttm.read_text().splitlines())
    print(f"\n{segments} segments written; the pipeline's share of the wall time is "
          f"{1 - summary['decode only (soundfile, same 1 s blocks)']['wall_s'] / summary[next(iter(summary))]['wall_s']:.0%}.")
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
