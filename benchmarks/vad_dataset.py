"""Deterministic labelled VAD set: espeak-ng speech mixed into noise at known SNRs.

Speech comes from espeak-ng (several voices, speeds, pitches), placed with seeded
random gaps; labels come from the clean speech track on a 10 ms grid (a 10 ms cell is
speech when its energy is within 35 dB of the loudest cell). Each clean track is mixed
with white, pink, brown and babble noise at SNR 20, 10, 5 and 0 dB (speech power
measured over speech cells). Nothing is downloaded; the set is cached in out/.

    python benchmarks/vad_dataset.py            # builds out/vad_set.npz (needs espeak-ng)
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

import remotemedia as rm
from remotemedia import audiofile

RATE = 16000
CELL = RATE // 100  # 10 ms
SNRS = (20, 10, 5, 0)
NOISES = ("white", "pink", "brown", "babble")
CACHE = Path(__file__).resolve().parents[1] / "out" / "vad_set.npz"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will meet her Wednesday.",
    "Audio pipelines must be fast, correct, and easy to embed in other programs.",
    "A voice activity detector decides which frames of a signal contain speech.",
    "The meeting starts at nine, so do not be late again tomorrow morning.",
    "Numbers like forty two and seventeen are spoken one digit group at a time.",
    "Rain falls softly on the roof while the old clock ticks in the hallway.",
    "Could you resample this recording to sixteen kilohertz before the analysis?",
    "Good morning everyone, today we will talk about signal processing.",
]
VOICES = ["en-us", "en", "en-us+f3", "en+m3", "en-us+f2", "en+m7"]


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng speech as float32 at RATE (resampled with our own Resample node)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                       check=True, capture_output=True)
        audio = audiofile.read(path)
    pipe = (rm.Pipeline().add_node("f", "FormatConverter", format="f32")
            .add_node("r", "Resample", target_rate=RATE).connect("f", "r"))
    return np.concatenate([a.samples for a in pipe.run(audio)["r"]])


def clean_track(rng: np.random.Generator, utterances: list[np.ndarray], seconds: float) -> np.ndarray:
    out = np.zeros(int(seconds * RATE), np.float32)
    at = int(rng.uniform(0.3, 1.0) * RATE)
    for u in utterances:
        if at + len(u) > len(out):
            break
        out[at:at + len(u)] += u
        at += len(u) + int(rng.uniform(0.25, 1.8) * RATE)
    return out


def labels_of(clean: np.ndarray) -> np.ndarray:
    cells = clean[:len(clean) // CELL * CELL].reshape(-1, CELL).astype(np.float64)
    energy = (cells ** 2).mean(1)
    return energy > energy.max() * 10 ** (-35 / 10)


def noise(kind: str, n: int, rng: np.random.Generator, babble_voices: list[np.ndarray]) -> np.ndarray:
    if kind == "babble":
        out = np.zeros(n)
        for v in babble_voices:  # continuous talkers, each looped from a random offset
            looped = np.resize(v, n + len(v))
            start = rng.integers(len(v))
            out += looped[start:start + n]
        return out
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    spectrum /= np.sqrt(f) if kind == "pink" else f  # 1/f or 1/f^2 power
    return np.fft.irfft(spectrum, n)


def build(files: int = 3, seconds: float = 20.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261129)
    speech = [speak(SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)], [130, 170, 210][i % 3],
                    [35, 50, 65][(i // 3) % 3]) for i in range(24)]
    babble = [np.concatenate([speak(s, v, 170, 50) for s in SENTENCES[k::4]]) for k, v in
              enumerate(["en-us+f4", "en+m2", "en-us+m5", "en+f5"])]
    data: dict[str, np.ndarray] = {}
    for f in range(files):
        picks = [speech[i] for i in rng.permutation(len(speech))[:10]]
        clean = clean_track(rng, picks, seconds)
        lab = labels_of(clean)
        speech_power = (clean[:len(lab) * CELL].reshape(-1, CELL)[lab].astype(np.float64) ** 2).mean()
        data[f"labels/{f}"] = lab
        for kind in NOISES:
            n = noise(kind, len(clean), rng, babble)
            for snr in SNRS:
                scale = np.sqrt(speech_power / (n.var() * 10 ** (snr / 10)))
                mix = clean + scale * n
                data[f"mix/{f}/{kind}/{snr}"] = (mix / max(1.0, np.abs(mix).max() * 1.01)).astype(np.float32)
    return data


def load() -> dict[str, np.ndarray]:
    """The set, built on first use."""
    if not CACHE.exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(CACHE, **build())
    return dict(np.load(CACHE))


if __name__ == "__main__":
    data = load()
    labels = [v for k, v in data.items() if k.startswith("labels/")]
    speech = sum(lab.sum() for lab in labels) / sum(len(lab) for lab in labels)
    print(f"{CACHE}: {len(data) - len(labels)} mixtures of {len(labels)} clean tracks, "
          f"{speech:.0%} of 10 ms cells are speech")
