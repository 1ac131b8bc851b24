"""Native audio nodes against the tools users would pick instead, side by side in one run.

Every contender is warmed up; timings alternate the order of contenders across rounds
and report medians. Peers (installed by `pip install -r benchmarks/requirements.txt`):
numpy, soxr, scipy, webrtcvad-wheels, earshot, onnxruntime + silero-vad's bundled ONNX
model (installed with --no-deps: no torch).

    python benchmarks/bench_audio_nodes.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import remotemedia as rm
from remotemedia import measure
from remotemedia.model import silero_package_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vad_dataset  # noqa: E402


def timed(contenders: dict, rounds: int) -> dict[str, float]:
    """Median seconds per call of each contender (warm-up first, alternating order)."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def node(node_type: str, **params):
    p = rm.Pipeline(runtime="native").add_node("n", node_type, **params)
    assert p.node_runtimes() == {"n": "native"}
    return p


def table(title: str, header: list[str], rows: list[list]):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def bench_format(rounds: int):
    n = 4_000_000
    x = np.random.default_rng(0).uniform(-1, 1, n).astype(np.float32)
    xi = (x * 32767).astype(np.int16)
    to_i16, to_f32 = node("FormatConverter", format="i16"), node("FormatConverter", format="f32")
    dst = np.empty_like(x)
    res = timed({
        "memcpy (np.copyto, 16 MB)": lambda: np.copyto(dst, x),
        "ours f32→i16": lambda: to_i16.run(rm.Audio(x, 48000)),
        "numpy f32→i16 (clip, rint, astype)": lambda: np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16),
        "numpy f32→i16 (clip+astype, truncating)": lambda: np.clip(x * 32768, -32768, 32767).astype(np.int16),
        "ours i16→f32": lambda: to_f32.run(rm.Audio(xi, 48000)),
        "numpy i16→f32": lambda: xi.astype(np.float32) / np.float32(32768),
    }, rounds)
    memcpy = res["memcpy (np.copyto, 16 MB)"]
    table(f"FormatConverter, {n / 1e6:.0f} M samples", ["contender", "ns/sample", "vs memcpy time"],
          [[k, f"{v / n * 1e9:.3f}", f"{v / memcpy:.2f}x"] for k, v in res.items()])


def bench_resample(rounds: int):
    import soxr
    from scipy.signal import resample_poly

    def ours(q):
        p = node("Resample", target_rate=16000, quality=q)
        return lambda x: np.concatenate([a.samples for a in p.run(rm.Audio(x, 48000))["n"]])

    fns = {f"ours {q}": ours(q) for q in ("fast", "balanced", "high")}
    fns["soxr HQ"] = lambda x: soxr.resample(x, 48000, 16000, quality="HQ")
    fns["soxr VHQ"] = lambda x: soxr.resample(x, 48000, 16000, quality="VHQ")
    fns["scipy resample_poly"] = lambda x: resample_poly(x, 1, 3).astype(np.float32)
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 48000 * 10).astype(np.float32)
    speed = timed({k: (lambda f=f: f(x)) for k, f in fns.items()}, rounds)
    rows = []
    for k, f in fns.items():
        edge = next((e for e in (0.9, 0.8, 0.7, 0.6, 0.5) if measure.passband_ripple_db(f, 48000, 16000, e, 10) < 0.1), 0)
        rows.append([k, f"{speed[k] / 10 * 1e3:.3f}", f"{speed[k] / speed['soxr HQ']:.2f}x",
                     f"{measure.passband_ripple_db(f, 48000, 16000):.4f}", f"{edge:.1f}",
                     f"{measure.worst_alias_db(f, 48000, 16000):.1f}", f"{measure.sweep_snr_db(f, 48000, 16000):.1f}"])
    table("Resample 48 kHz → 16 kHz mono, 10 s", ["contender", "ms per s of audio", "time vs soxr HQ",
          "ripple to 0.9·Nyq (dB)", "flat (0.1 dB) to ×Nyq", "worst alias (dB)", "sweep SNR (dB)"], rows)


def f1_scores(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    n = min(len(pred), len(labels))
    p, t = pred[:n], labels[:n]
    tp, fp, fn = (p & t).sum(), (p & ~t).sum(), (~p & t).sum()
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return precision, recall, 2 * tp / max(2 * tp + fp + fn, 1)


def vad_contenders():
    """name -> (function from float32 16 kHz audio to a 10 ms speech grid, frames per call)."""
    import earshot
    import webrtcvad

    def ours(**params):
        pipe = node("VAD", **params)

        def run(x):
            events = pipe.run(rm.Audio(x, 16000))["n"]
            return cells(np.concatenate([e["speech"] for e in events]).astype(bool), events[0]["frame_ms"] * 16)
        return run

    def earshot_run(x):
        detector = earshot.Detector()
        return cells(np.array([detector.predict_f32(x[i:i + 256]) > 0.5 for i in range(0, len(x) - 255, 256)]), 256)

    def webrtc(mode):
        def run(x):
            vad = webrtcvad.Vad(mode)
            pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
            return np.repeat([vad.is_speech(pcm[i:i + 480].tobytes(), 16000)
                              for i in range(0, len(pcm) - 479, 480)], 3)
        return run

    def energy(x):  # the naive baseline: frame energy 10 dB over the 10th percentile
        e = 10 * np.log10((x[:len(x) // 480 * 480].reshape(-1, 480).astype(np.float64) ** 2).mean(1) + 1e-12)
        return np.repeat(e > np.percentile(e, 10) + 10, 3)

    out = {SPECTRAL: ours()}
    if silero_package_model():
        out[SILERO] = ours(engine="silero")
    out.update({f"webrtcvad mode {m}": webrtc(m) for m in range(4)})
    out["earshot"] = earshot_run
    out["energy threshold"] = energy
    silero = silero_vad()
    if silero:
        out["silero-vad (onnx)"] = silero
    return out


SPECTRAL, SILERO = "ours: spectral engine (default)", "ours: silero engine"


def cells(decisions: np.ndarray, frame_len: int) -> np.ndarray:
    """Per-frame decisions (frames of ``frame_len`` samples) on the 10 ms grid of the labels."""
    grid = np.repeat(decisions, frame_len)
    return grid[: len(grid) // 160 * 160].reshape(-1, 160).mean(1) > 0.5


def silero_vad():
    try:
        import onnxruntime
        import silero_vad as pkg  # noqa: F401  (only for its bundled model file)
    except ImportError:
        try:
            import importlib.util
            spec = importlib.util.find_spec("silero_vad")
            model = Path(spec.submodule_search_locations[0]) / "data" / "silero_vad.onnx"
            import onnxruntime
        except Exception:
            return None
    else:
        model = Path(pkg.__file__).parent / "data" / "silero_vad.onnx"
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    def run(x):
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, 64), np.float32)
        probs = []
        for i in range(0, len(x) - 511, 512):
            chunk = np.concatenate([context, x[None, i:i + 512]], axis=1)
            prob, state = session.run(None, {"input": chunk, "state": state, "sr": np.array(16000, np.int64)})
            context = chunk[:, -64:]
            probs.append(prob.item())
        return cells(np.array(probs) > 0.5, 512)
    return run


def bench_vad(rounds: int):
    data = vad_dataset.load()
    contenders = vad_contenders()
    rows = []
    best_webrtc = {}
    results = {}
    for name, fn in contenders.items():
        per_snr = []
        for snr in vad_dataset.SNRS:
            scores = [f1_scores(fn(data[f"mix/{f}/{k}/{snr}"]), data[f"labels/{f}"])
                      for f in range(3) for k in vad_dataset.NOISES]
            per_snr.append(np.mean(scores, axis=0))
        results[name] = per_snr
        if name.startswith("webrtcvad"):
            for i, s in enumerate(per_snr):
                best_webrtc[i] = max(best_webrtc.get(i, 0), s[2])
    for name, per_snr in results.items():
        rows.append([name] + [f"{p:.3f} / {r:.3f} / **{f:.3f}**" if name in (SPECTRAL, SILERO) else
                              f"{p:.3f} / {r:.3f} / {f:.3f}" for p, r, f in per_snr])
    rows.append(["best webrtcvad mode (F1)"] + [f"{best_webrtc[i]:.3f}" for i in range(len(vad_dataset.SNRS))])
    table("VAD accuracy: precision / recall / F1 per SNR, 10 ms cells, mean over white, pink, brown, babble",
          ["contender"] + [f"SNR {s} dB" for s in vad_dataset.SNRS], rows)
    per_noise = []
    for name in (SPECTRAL, SILERO, "webrtcvad mode 3", "earshot", "silero-vad (onnx)"):
        if name not in contenders:
            continue
        f1 = {k: np.mean([f1_scores(contenders[name](data[f"mix/{f}/{k}/{snr}"]), data[f"labels/{f}"])[2]
                          for f in range(3) for snr in vad_dataset.SNRS]) for k in vad_dataset.NOISES}
        per_noise.append([name] + [f"{f1[k]:.3f}" for k in vad_dataset.NOISES])
    table("VAD F1 per noise type (mean over SNRs)", ["contender"] + list(vad_dataset.NOISES), per_noise)

    x = data["mix/0/pink/10"]
    speed = timed({k: (lambda f=f: f(x)) for k, f in contenders.items()
                   if k != "energy threshold"}, rounds)
    windows = len(x) / 512
    base = speed.get("silero-vad (onnx)")
    table(f"VAD speed, {len(x) / 16000:.0f} s at 16 kHz, one thread", ["contender", "µs per 32 ms of audio",
          "CPU relative to silero on onnxruntime"],
          [[k, f"{v / windows * 1e6:.1f}", f"{v / base:.3f}×" if base else "–"] for k, v in speed.items()])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--only", choices=["format", "resample", "vad"])
    args = parser.parse_args()
    rounds = 5 if args.quick else 15
    print(f"# remotemedia audio nodes vs peers (median of {rounds} alternating rounds)")
    for name, fn in (("format", bench_format), ("resample", bench_resample), ("vad", bench_vad)):
        if args.only in (None, name):
            fn(rounds)


if __name__ == "__main__":
    main()
