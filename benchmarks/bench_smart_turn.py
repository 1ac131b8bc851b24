"""SmartTurn (issue 32) side by side with pipecat's own path, in one process, one thread:

1. one evaluation of an 8 s clip, process CPU: pipecat's path (its numpy Whisper
   features, loaded from the installed pipecat-ai wheel, and the model on onnxruntime
   with one intra-op and one inter-op thread, as LocalSmartTurnAnalyzerV3 sets it up)
   against the SmartTurn node run once on the clip: its native int8 forward on every
   kernel this CPU has (REMOTEMEDIA_INT8_KERNEL picks one), and its "onnxruntime"
   engine (native features, the same model on onnxruntime);
2. the model alone: onnxruntime on ready features, against the native forward (the
   native node's time less its features' time, which is the onnxruntime engine's time
   less onnxruntime's model time); and the multiply-adds per second each reaches;
3. memory: RSS per session of 100 streams of VAD(silero) → SmartTurn fed a recorded
   call in 20 ms chunks;
4. a CPU with AVX2 and no VNNI: this script re-run under valgrind (--tool=none), whose
   virtual CPU has AVX2 and no AVX-512, so onnxruntime and the node both take their
   AVX2 paths; pipecat's path against the node (engine auto), alternating. valgrind
   translates every instruction, so these times are an indication, not a benchmark of
   such a machine (--no-emulated skips it).

Every contender is warmed up; rounds alternate the order; a figure is the median over
rounds of process CPU (time.process_time) per evaluation.

    python benchmarks/bench_smart_turn.py [--rounds 9] [--sessions 100] [--no-emulated]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import soundfile as sf  # noqa: E402

import remotemedia as rm  # noqa: E402
from machine import cpu_model, rss_kb  # noqa: E402
from remotemedia.model import smart_turn_package_model  # noqa: E402

RATE = 16000
ROOT = Path(__file__).resolve().parents[1]
# multiply-adds of one evaluation (conv1, conv2, 4 layers of q/k/v, scores, context,
# out, fc1, fc2; pooling; head)
MACS = (800 * 240 * 384 + 400 * 1152 * 384
        + 4 * (3 * 400 * 384 * 384 + 2 * 6 * 400 * 400 * 64 + 400 * 384 * 384 + 2 * 400 * 384 * 1536)
        + 400 * 384 * 256 + 400 * 256 + 384 * 256 + 256 * 64 + 64)


def recording() -> np.ndarray:
    spec = importlib.util.find_spec("pyannote.audio")
    for folder in spec.submodule_search_locations if spec else []:
        wav = Path(folder, "sample", "sample.wav")
        if wav.is_file():
            return sf.read(wav, dtype="float32")[0]
    raise SystemExit("needs the pyannote.audio wheel's sample (pip install --no-deps pyannote.audio)")


class Pipecat:
    """pipecat's path: its feature module from the wheel, the model on onnxruntime."""

    def __init__(self, model: str):
        spec = importlib.util.spec_from_file_location("pipecat_features", Path(model).parents[1] / "_whisper_features.py")
        self.features_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.features_module)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def features(self, clip):
        clip = clip[-8 * RATE:]
        return self.features_module.compute_whisper_log_mel_features(np.pad(clip, (8 * RATE - len(clip), 0)))[None]

    def model(self, features):
        return self.session.run(None, {"input_features": features})[0]

    def probability(self, clip):
        return float(self.model(self.features(clip))[0, 0])


def node(kernel: str | None, engine: str = "native"):
    if kernel:
        os.environ["REMOTEMEDIA_INT8_KERNEL"] = kernel
    try:
        pipeline = rm.Pipeline().add_node("t", "SmartTurn", engine=engine)
        pipeline.run(rm.Audio(np.zeros(RATE, np.float32), RATE))  # built now, with that kernel
        return pipeline
    finally:
        os.environ.pop("REMOTEMEDIA_INT8_KERNEL", None)


def cpu_ms(fn, repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1000


def kernels() -> list[str]:
    out = []
    for k in ("avx512-vnni", "avx-vnni", "avx2", "portable"):
        try:
            node(k)
            out.append(k)
        except rm.ManifestError:
            pass
    return out


def emulated(rounds: int):
    """Inside valgrind: pipecat's path and the node (engine auto), alternating; one line
    of JSON: median process-CPU ms of each, and the probabilities."""
    pipecat = Pipecat(smart_turn_package_model())
    clip = recording()[2 * RATE:10 * RATE]
    pipeline = rm.Pipeline().add_node("t", "SmartTurn")
    audio = rm.Audio(clip, RATE)
    contenders = {"pipecat": lambda: pipecat.probability(clip), "native": lambda: pipeline.run(audio)["t"][0]["probability"]}
    results = {name: fn() for name, fn in contenders.items()}  # warm-up
    times = {name: [] for name in contenders}
    for r in range(rounds):
        for name in (list(contenders) if r % 2 == 0 else list(contenders)[::-1]):
            times[name].append(cpu_ms(contenders[name], 1))
    print(json.dumps({"ms": {k: statistics.median(v) for k, v in times.items()}, "probability": results}))


def report_emulated(rounds: int):
    if shutil.which("valgrind") is None:
        print("(no valgrind: the AVX2-only comparison is skipped)")
        return
    run = subprocess.run(["valgrind", "--tool=none", "-q", sys.executable, __file__, "--inner-emulated", "--rounds", str(rounds)],
                         capture_output=True, text=True, check=True)
    got = json.loads(run.stdout.strip().splitlines()[-1])
    ms, p = got["ms"], got["probability"]
    print(f"AVX2 without VNNI (valgrind's virtual CPU, {rounds} rounds, indicative only): pipecat's path "
          f"{ms['pipecat']:.0f} ms, SmartTurn (auto: native, avx2 kernel) {ms['native']:.0f} ms, "
          f"ratio {ms['native'] / ms['pipecat']:.2f}; probabilities {p['pipecat']:.6f} and {p['native']:.6f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--no-emulated", action="store_true", help="skip the AVX2-only comparison under valgrind")
    ap.add_argument("--inner-emulated", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner_emulated:
        return emulated(args.rounds)
    model = smart_turn_package_model()
    if model is None:
        raise SystemExit("needs pipecat-ai's model (pip install --no-deps pipecat-ai)")
    x = recording()
    clip = x[2 * RATE:10 * RATE]
    pipecat = Pipecat(model)
    ready = pipecat.features(clip)
    audio = rm.Audio(clip, RATE)
    contenders = {"pipecat: numpy features + onnxruntime": lambda: pipecat.probability(clip),
                  "onnxruntime model alone": lambda: pipecat.model(ready)}
    pipelines = {k: node(k) for k in kernels()}
    for k, p in pipelines.items():
        contenders[f"SmartTurn native, {k} kernel"] = (lambda p=p: p.run(audio))
    ort_engine = node(None, "onnxruntime")
    contenders["SmartTurn engine onnxruntime (native features)"] = lambda: ort_engine.run(audio)
    for fn in contenders.values():  # warm-up
        for _ in range(2):
            fn()
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(cpu_ms(contenders[name], args.repeat))
    med = {name: statistics.median(v) for name, v in times.items()}
    pipecat_total, ort_model = med[names[0]], med[names[1]]
    native_features = med["SmartTurn engine onnxruntime (native features)"] - ort_model
    print(f"# SmartTurn, {time.strftime('%Y-%m-%d')}, {cpu_model()}, onnxruntime {ort.__version__}, "
          f"median of {args.rounds} rounds x {args.repeat} evaluations, process CPU per evaluation")
    print(f"# {MACS / 1e9:.2f} G multiply-adds per evaluation")
    print("| contender | ms | ratio to pipecat's path | model alone, ms | ratio to onnxruntime's model | GMAC/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        total = med[name]
        alone = ort_model if name == names[1] else (total - native_features if name.startswith("SmartTurn native") else None)
        cols = [name, f"{total:.1f}", f"{total / pipecat_total:.2f}"]
        cols += [f"{alone:.1f}", f"{alone / ort_model:.2f}", f"{MACS / alone / 1e6:.0f}"] if alone else ["", "", ""]
        print("| " + " | ".join(cols) + " |")
    print(f"native features (derived): {native_features:.1f} ms; pipecat's numpy features: "
          f"{statistics.median([cpu_ms(lambda: pipecat.features(clip), args.repeat) for _ in range(args.rounds)]):.1f} ms")

    # memory: sessions of VAD(silero) -> SmartTurn, streamed a call in 20 ms chunks
    manifest = json.loads((ROOT / "examples" / "turn_pipeline.json").read_text())
    pipeline = rm.Pipeline.from_manifest(manifest)
    warm = pipeline.stream()
    warm.push(rm.Audio(x[:RATE], RATE))
    before = rss_kb()
    streams = [pipeline.stream() for _ in range(args.sessions)]
    chunk = 320
    decisions = 0
    for i in range(0, len(x), chunk):
        for s in streams:
            s.push(rm.Audio(x[i:i + chunk], RATE))
            decisions += sum(1 for key, _ in s.pull() if key == "turn")
    after = rss_kb()
    print(f"{args.sessions} sessions streamed {len(x) / RATE:.0f} s each: {decisions} decisions; "
          f"RSS +{(after - before) / 1024:.1f} MB, {(after - before) / args.sessions:.0f} KB per session")
    if not args.no_emulated:
        report_emulated(min(args.rounds, 5))


if __name__ == "__main__":
    main()
