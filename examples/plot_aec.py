"""Echo cancellation, seen: microphone, far end, output and ERLE over time.

    python examples/plot_aec.py out/aec.png                      # a generated scene
    python examples/plot_aec.py out/aec.png --mic mic.wav --far far.wav

The generated scene: a synthetic voice plays on the loudspeaker (far end), reaches the
microphone through a room (a 60 ms delay and a decaying reverberant tail), and a second
voice talks locally from 6 s to 9 s (double talk). The pipeline is
examples/aec_pipeline.json, pushed in 20 ms chunks as a live call would; ERLE is the
echo's energy over the output's, per 100 ms, where the echo is within 30 dB of its loudest and the local
talker does not (known in the generated scene only).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import remotemedia as rm  # noqa: E402
from remotemedia import audiofile  # noqa: E402
from remotemedia.convert import convert  # noqa: E402

RATE = 16000
MANIFEST = Path(__file__).with_name("aec_pipeline.json")


def voice(seconds: float, pitch: float, seed: int) -> np.ndarray:
    """A voiced, syllable-like test signal: harmonics of a wandering pitch, in bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = pitch * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    bursts = (np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)) > -0.2) * (np.sin(2 * np.pi * 0.3 * t) > -0.6)
    return (0.15 * x * bursts).astype(np.float32)


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mic, far, echo, local talker) of the generated scene."""
    far = voice(12, 130, 1)
    rng = np.random.default_rng(2)
    h = np.zeros(int(0.4 * RATE), np.float32)
    h[int(0.06 * RATE)] = 0.6
    tail = np.arange(len(h) - int(0.065 * RATE))
    h[int(0.065 * RATE):] = 0.05 * rng.standard_normal(len(tail)) * np.exp(-tail / (0.05 * RATE))
    echo = np.convolve(far, h)[:len(far)].astype(np.float32)
    local = np.zeros_like(far)
    local[6 * RATE:9 * RATE] = voice(3, 210, 3)
    mic = echo + local + rng.normal(0, 1e-3, len(far)).astype(np.float32)
    return mic, far, echo, local


def clean(mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    p = rm.Pipeline.from_manifest(MANIFEST)
    out, chunk = [], RATE // 50
    with p.stream() as s:
        for i in range(0, len(mic), chunk):
            s.push({"far": rm.Audio(far[i:i + chunk], RATE), "mic": rm.Audio(mic[i:i + chunk], RATE)})
            out += [a.samples for _, a in s.pull()]
        s.flush()
        out += [a.samples for _, a in s.pull()]
    return np.concatenate(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("png", type=Path)
    parser.add_argument("--mic", type=Path, help="the microphone recording (mono or first channel, 16 kHz)")
    parser.add_argument("--far", type=Path, help="what the loudspeaker played, same rate and start")
    args = parser.parse_args()
    if (args.mic is None) != (args.far is None):
        parser.error("give both --mic and --far, or neither for the generated scene")
    if args.mic is None:
        mic, far, echo, local = scene()
    else:
        mic, far = (convert(audiofile.read(f).samples, np.float32) for f in (args.mic, args.far))
        mic, far = (x if x.ndim == 1 else x[:, 0] for x in (mic, far))
        echo, local = mic, np.zeros_like(mic)
    out = clean(mic, far)
    block = RATE // 10
    blocks = len(out) // block
    starts = np.arange(blocks) * block

    def energy(x: np.ndarray) -> np.ndarray:
        """Per 100 ms block."""
        return np.sum(np.asarray(x[:blocks * block], np.float64).reshape(blocks, block) ** 2, axis=1) + 1e-12

    echo_e = energy(echo)
    erle = 10 * np.log10(echo_e / energy(out))
    erle[(energy(local) >= 1e-6) | (echo_e <= echo_e.max() * 1e-3)] = np.nan
    t = np.arange(len(mic)) / RATE
    fig, axes = plt.subplots(4, 1, figsize=(12, 8), sharex=True)
    for ax, x, name in zip(axes, (mic, far, out), ("microphone", "far end (loudspeaker)", "output")):
        ax.plot(t[:len(x)], x[:len(t)], lw=0.4, color="0.3")
        ax.set_ylabel(name)
        ax.set_ylim(-1, 1)
    axes[3].plot(starts / RATE, erle, ".-", ms=3)
    axes[3].axhline(25, color="r", lw=0.6, ls="--")
    axes[3].set_ylabel("ERLE, dB")
    axes[3].set_xlabel("seconds")
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
