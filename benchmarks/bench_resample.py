"""Resample against soxr, side by side in one run: one-shot at five rate pairs, mono
and stereo, 1 s and 60 s of noise; streaming in 20 ms chunks; quality of every preset.

Ours runs through `Pipeline.run` / a stream from Python (the per-call overhead is
included). soxr 1.x: `soxr.resample` (one-shot) and `soxr.ResampleStream`
(streaming), quality HQ. Warm-up first, then rounds in alternating order; medians.

    python benchmarks/bench_resample.py [--rounds 15] [--quick | --streaming]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads spin and take a core from the timings

import numpy as np  # noqa: E402
import soxr  # noqa: E402

import remotemedia as rm  # noqa: E402
from bench_audio_nodes import table  # noqa: E402
from bench_audio_nodes import timed as median_time
from remotemedia import measure  # noqa: E402

PAIRS = [(48000, 16000), (44100, 16000), (16000, 48000), (44100, 48000), (48000, 8000)]
PRESETS = ("fast", "balanced", "high")
INTO = "high, pull_into"


def ours(fi: int, fo: int, quality: str, joined: bool = True):
    """Our resampler as a function of the input. A run returns its output as two
    zero-copy arrays (what the chunk completed, and the tail at flush); ``joined``
    concatenates them into one, which copies the whole output."""
    p = rm.Pipeline(runtime="native").add_node("n", "Resample", target_rate=fo, quality=quality)
    assert p.node_runtimes() == {"n": "native"}

    def run(x: np.ndarray):
        items = p.run(rm.Audio(x, fi))["n"]
        return np.concatenate([a.samples for a in items]) if joined else items
    return run


def one_shot(rounds: int, seconds_list: list[float]):
    rng = np.random.default_rng(1)
    rows = []
    for seconds in seconds_list:
        for channels in (1, 2):
            for fi, fo in PAIRS:
                shape = (int(fi * seconds),) if channels == 1 else (int(fi * seconds), channels)
                x = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
                fns = {q: ours(fi, fo, q, joined=False) for q in PRESETS}
                fns["soxr HQ"] = lambda x, fi=fi, fo=fo: soxr.resample(x, fi, fo, quality="HQ")
                t = median_time({k: (lambda f=f, x=x: f(x)) for k, f in fns.items()}, max(3, rounds if seconds < 10 else rounds // 3))
                hq = t["soxr HQ"]
                rows.append([f"{fi / 1000:g}→{fo / 1000:g}", channels, f"{seconds:g}", f"{hq * 1e3:.3f}"]
                            + [f"{t[q] * 1e3:.3f} ({t[q] / hq:.2f}×)" for q in PRESETS])
    table("One-shot, ms per call (ratio to soxr HQ)", ["rates kHz", "ch", "s", "soxr HQ"] + list(PRESETS), rows)


def streaming(rounds: int, chunks: int = 500):
    rows = []
    for fi, fo in PAIRS:
        for channels in (1, 2):
            frames = fi // 50
            rng = np.random.default_rng(2)
            shape = (frames,) if channels == 1 else (frames, channels)
            audio = [rng.uniform(-0.5, 0.5, shape).astype(np.float32) for _ in range(8)]
            streams = {q: rm.Pipeline(runtime="native").add_node("n", "Resample", target_rate=fo, quality=q).stream()
                       for q in PRESETS}
            soxr_stream = soxr.ResampleStream(fi, fo, channels, dtype="float32", quality="HQ")

            def ours_run(s, audio=audio, fi=fi):
                def run():
                    for i in range(chunks):
                        s.push(rm.Audio(audio[i % 8], fi))
                        s.pull()
                return run

            def soxr_run(stream=soxr_stream, audio=audio):
                for i in range(chunks):
                    stream.resample_chunk(audio[i % 8])

            # `high` again, its output taken into one array kept across chunks (Stream.pull_into)
            into = rm.Pipeline(runtime="native").add_node("n", "Resample", target_rate=fo, quality="high").stream()
            out = np.empty((8 * fo // 50,) if channels == 1 else (8 * fo // 50, channels), np.float32)

            def into_run(s=into, audio=audio, fi=fi, out=out):
                for i in range(chunks):
                    s.push(rm.Audio(audio[i % 8], fi))
                    s.pull_into(out)

            fns = {q: ours_run(s) for q, s in streams.items()}
            fns[INTO] = into_run
            fns["soxr HQ"] = soxr_run
            t = median_time(fns, rounds)
            hq = t["soxr HQ"] / chunks
            rows.append([f"{fi / 1000:g}→{fo / 1000:g}", channels, f"{hq * 1e6:.1f}"]
                        + [f"{t[q] / chunks * 1e6:.1f} ({t[q] / chunks / hq:.2f}×)" for q in (*PRESETS, INTO)])
            for s in (*streams.values(), into):
                s.close()
    table("Streaming, µs per 20 ms chunk (push + pull, or push + pull_into; soxr ResampleStream.resample_chunk)",
          ["rates kHz", "ch", "soxr HQ", *PRESETS, INTO], rows)



def quality():
    rows = []
    for fi, fo in PAIRS:
        fns = {f"ours {q}": ours(fi, fo, q) for q in PRESETS}
        fns["soxr HQ"] = lambda x, fi=fi, fo=fo: soxr.resample(x, fi, fo, quality="HQ")
        for name, f in fns.items():
            rows.append([f"{fi / 1000:g}→{fo / 1000:g}", name, f"{measure.passband_ripple_db(f, fi, fo):.4f}",
                         f"{measure.worst_alias_db(f, fi, fo):.1f}", f"{measure.sweep_snr_db(f, fi, fo):.1f}"])
    table("Quality (mono)", ["rates kHz", "contender", "ripple to 0.9·Nyq (dB)", "worst alias (dB)", "sweep SNR (dB)"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="1 s inputs only, 5 rounds, no quality table")
    ap.add_argument("--streaming", action="store_true", help="the streaming table only")
    args = ap.parse_args()
    rounds = 5 if args.quick else args.rounds
    print(f"soxr {soxr.__version__}, numpy {np.__version__}, {time.strftime('%Y-%m-%d')}")
    if not args.streaming:
        one_shot(rounds, [1.0] if args.quick else [1.0, 60.0])
    streaming(rounds)
    if not (args.quick or args.streaming):
        quality()


if __name__ == "__main__":
    main()
