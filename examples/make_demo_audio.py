"""Writes the demo input: 30 s of 48 kHz stereo int16 speech in pink noise at 10 dB SNR.

Speech is spoken by espeak-ng when it is installed (`apt-get install espeak-ng`), else
synthesized as voiced bursts (harmonic stacks with a syllable-rate envelope). Either
way the file is deterministic, and the true speech spans go to a sidecar JSON.
"""

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from remotemedia import Audio, Pipeline, audiofile

RATE = 48000
LINES = [
    "Welcome to the remote media demo.",
    "This sentence was spoken by a speech synthesizer, then mixed with noise.",
    "The pipeline converts, downmixes, resamples and frames the audio.",
    "Finally, a voice activity detector marks where speech is.",
    "Thank you for listening.",
]


def spoken(text: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "line.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(path), text], check=True, capture_output=True)
        audio = audiofile.read(path)
    p = (Pipeline().add_node("f", "FormatConverter", format="f32")
         .add_node("r", "Resample", target_rate=RATE).connect("f", "r"))
    return np.concatenate([a.samples for a in p.run(audio)["r"]]).astype(np.float64)


def voiced(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(rng.uniform(0.8, 2.5) * RATE)) / RATE
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    return sum(np.sin(h * phase) / h for h in range(1, 30)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)


def demo_audio(seconds: float = 30.0) -> tuple[Audio, list[dict]]:
    rng = np.random.default_rng(20261129)
    use_espeak = shutil.which("espeak-ng") is not None
    clean = np.zeros(int(seconds * RATE))
    spans = []
    at = int(1.0 * RATE)
    for i in range(len(LINES) if use_espeak else 12):
        s = spoken(LINES[i], ["en-us", "en+f3"][i % 2]) if use_espeak else voiced(rng)
        if at + len(s) > len(clean):
            break
        clean[at:at + len(s)] = s / np.abs(s).max()
        spans.append({"start": at / RATE, "end": (at + len(s)) / RATE})
        at += len(s) + int(rng.uniform(0.8, 2.0) * RATE)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(len(clean))) /
                         np.sqrt(np.maximum(np.fft.rfftfreq(len(clean), 1 / RATE), 20)), len(clean))
    active = np.concatenate([clean[int(s["start"] * RATE):int(s["end"] * RATE)] for s in spans])
    noise *= np.sqrt(active.var() / noise.var() / 10)  # 10 dB SNR
    mono = clean + noise
    stereo = np.stack([mono, 0.8 * mono + 0.05 * noise[::-1]], axis=1)
    stereo *= 0.7 / np.abs(stereo).max()
    return Audio(np.rint(stereo * 32767).astype(np.int16), RATE), spans


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    audio, spans = demo_audio(args.seconds)
    audiofile.write(args.output, audio)
    args.output.with_suffix(".truth.json").write_text(json.dumps(spans, indent=1))
    source = "espeak-ng" if shutil.which("espeak-ng") else "synthetic voiced bursts (install espeak-ng for real speech)"
    print(f"wrote {args.output}: {audio}, speech from {source}")
