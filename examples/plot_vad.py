"""Plots the demo: waveform, VAD score and decisions, true speech spans, detected segments.

    python examples/plot_vad.py out/demo_in.wav out/demo_events.json out/demo_vad.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from remotemedia import audiofile  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("audio", type=Path)
    parser.add_argument("events", type=Path, help="the --events file of `remotemedia run`")
    parser.add_argument("png", type=Path)
    args = parser.parse_args()
    audio = audiofile.read(args.audio)
    events = json.loads(args.events.read_text())
    frames = events["vad"]
    segments = events.get("vad.segments", [])
    frame_s = frames[0]["frame_ms"] / 1000
    speech = np.concatenate([f["speech"] for f in frames]).astype(float)
    score = np.concatenate([f["score"] for f in frames])
    t_frames = np.arange(len(speech)) * frame_s


    x = audio.samples[:, 0] if audio.channels > 1 else audio.samples
    t = np.arange(len(x)) / audio.sample_rate
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    ax1.plot(t[::8], x[::8] / 32768, lw=0.4, color="0.4")
    truth_path = args.audio.with_suffix(".truth.json")
    if truth_path.exists():
        for s in json.loads(truth_path.read_text()):
            ax1.axvspan(s["start"], s["end"], color="tab:green", alpha=0.15)
    for s in segments:
        ax1.axvspan(s["start"], s["end"], ymin=0.92, ymax=1.0, color="tab:blue")
    ax1.set_ylabel("left channel")
    ax1.set_title("input (green: true speech; blue bars: detected segments)")
    ax2.plot(t_frames, score, lw=0.8, label="score")
    ax2.fill_between(t_frames, 0, speech, step="post", alpha=0.3, label="speech decision")
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("seconds")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)
    print(f"wrote {args.png}: {len(segments)} speech segments, "
          f"{speech.mean():.0%} of frames speech")


if __name__ == "__main__":
    main()
