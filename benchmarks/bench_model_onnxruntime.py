"""The Model node on onnxruntime (issue 31), side by side in one process:

1. per-window process CPU of silero's full graph (with its If, state carried): the
   Model node inside the graph (a stream fed one window per push, and a one-shot run of
   a clip) against onnxruntime called from Python window by window, the way pipecat and
   livekit call it; both on one intra-op and one inter-op thread;
2. a dense classifier both engines run: the built-in engine against onnxruntime, in the
   graph, and onnxruntime from Python;
3. a stateless model over a 60 s file: one-shot runs batched (batch 32) against window
   by window (batch 1);
4. memory (measured first, in a fresh process): RSS of loading onnxruntime and the
   session, of the first stream, and of 199 more;
5. idle: process CPU with those 200 streams open and no audio for 10 s.

Every contender is warmed up; rounds alternate their order; a figure is the median over
rounds of process CPU (time.process_time) per window.

    python benchmarks/bench_model_onnxruntime.py [--rounds 7] [--idle 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import remotemedia as rm
from machine import cpu_model, rss_kb
from remotemedia.model import silero_package_model

RATE, WINDOW = 16000, 512


def python_session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def median_per_window(contenders: dict, windows: int, rounds: int) -> dict:
    for run in contenders.values():  # warm-up
        run()
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.process_time()
            contenders[name]()
            times[name].append((time.process_time() - start) / windows * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def silero_contenders(path: str, seconds: float):
    x = (np.random.default_rng(0).standard_normal(int(RATE * seconds)) * 0.1).astype(np.float32)
    n = len(x) // WINDOW
    x = x[:n * WINDOW]
    params = {"model_path": path, "window": WINDOW, "context": 64, "state": [["state", "stateN"]], "constants": {"sr": RATE},
              "engine": "onnxruntime"}
    pipeline = rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": params}]},
                                         runtime="native")
    session = python_session(path)
    sr = np.array(RATE, np.int64)

    def by_python():
        state, context = np.zeros((2, 1, 128), np.float32), np.zeros(64, np.float32)
        for k in range(n):
            w = np.concatenate([context, x[k * WINDOW:(k + 1) * WINDOW]])[None]
            _, state = session.run(None, {"input": w, "state": state, "sr": sr})
            context = w[0, -64:]

    def stream():
        with pipeline.stream() as s:
            for k in range(n):
                s.push(rm.Audio(x[k * WINDOW:(k + 1) * WINDOW], RATE))
                s.pull()

    def one_shot():
        pipeline.run(rm.Audio(x, RATE))

    return n, {"onnxruntime from Python, window by window": by_python, "Model in the graph: stream, a push + pull per window": stream,
               "Model in the graph: one-shot run": one_shot}


def dense_model(path: str, hidden: int, window: int = 400) -> str:
    rng = np.random.default_rng(0)
    init = {"w1": (rng.standard_normal((window, hidden)) * 0.05).astype(np.float32),
            "b1": rng.standard_normal(hidden).astype(np.float32),
            "w2": (rng.standard_normal((hidden, 8)) * 0.1).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["z"]),
             helper.make_node("Softmax", ["z"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", window])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
                              [numpy_helper.from_array(v, k) for k, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def dense_contenders(path: str, seconds: float):
    window = 400
    x = (np.random.default_rng(1).standard_normal(int(RATE * seconds)) * 0.1).astype(np.float32)
    n = len(x) // window
    x = x[:n * window]

    out = np.empty(n * 8, np.float32)

    def model(engine: str, batch: int, emit: str = "json", into: bool = False):
        params = {"model_path": path, "window": window, "engine": engine, "batch": batch, "emit": emit}
        p = rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": params}]}, runtime="native")
        if into:  # every window's output written into one array: no object per window
            return lambda: p.run_into(rm.Audio(x, RATE), out)
        return lambda: p.run(rm.Audio(x, RATE))

    session = python_session(path)

    def by_python():
        for k in range(n):
            session.run(None, {"x": x[k * window:(k + 1) * window][None]})

    return n, {"built-in engine, one-shot": model("native", 1),
               "onnxruntime in the graph, window by window (batch 1)": model("onnxruntime", 1),
               "onnxruntime in the graph, batched (batch 32)": model("onnxruntime", 32),
               "onnxruntime in the graph, batch 1, emit audio": model("onnxruntime", 1, "audio"),
               "onnxruntime in the graph, batch 32, emit audio": model("onnxruntime", 32, "audio"),
               "onnxruntime in the graph, batch 1, emit audio, run_into": model("onnxruntime", 1, "audio", True),
               "onnxruntime in the graph, batch 32, emit audio, run_into": model("onnxruntime", 32, "audio", True),
               "onnxruntime from Python, window by window": by_python}


def streams(path: str, count: int, idle_s: float) -> tuple[float, float, float, float]:
    """RSS (MB) added by building one Model pipeline (onnxruntime and the session
    loaded), by its first stream, by ``count`` - 1 more streams, and process CPU (% of a
    core) with them all open and no audio for ``idle_s``."""
    params = {"model_path": path, "window": WINDOW, "context": 64, "state": [["state", "stateN"]], "constants": {"sr": RATE}}
    chunk = rm.Audio((np.random.default_rng(2).standard_normal(WINDOW) * 0.1).astype(np.float32), RATE)
    before = rss_kb()
    pipeline = rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": params}]},
                                         runtime="native")
    built = rss_kb()
    opened = []
    for _ in range(count):
        s = pipeline.stream()
        for _ in range(3):
            s.push(chunk)
            s.pull()
        opened.append(s)
        if len(opened) == 1:
            first = rss_kb()
    added = rss_kb() - first
    start_cpu, start = time.process_time(), time.monotonic()
    time.sleep(idle_s)
    idle = (time.process_time() - start_cpu) / (time.monotonic() - start) * 100
    for s in opened:
        s.close()
    return (built - before) / 1024, (first - built) / 1024, added / 1024, idle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--idle", type=float, default=10.0)
    args = ap.parse_args()
    rm.set_inference_threads(1)
    print(f"# {time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} CPUs, onnxruntime {ort.__version__}, "
          f"medians of {args.rounds} rounds, process CPU")
    silero = os.path.join(os.path.dirname(silero_package_model()), "silero_vad.onnx")
    # first, while the process has loaded neither onnxruntime nor a session
    built, first, added, idle = streams(silero, 200, args.idle)
    print("\n## 200 streams of one Model pipeline (silero full graph on onnxruntime), RSS")
    print(f"pipeline built (onnxruntime, session) {built:8.1f} MB")
    print(f"its first stream                      {first:8.2f} MB")
    print(f"199 more streams                      {added:8.2f} MB")
    print(f"idle {args.idle:.0f} s, all 200 open               {idle:8.3f} % of a core")
    n, contenders = silero_contenders(silero, args.seconds)
    results = median_per_window(contenders, n, args.rounds)
    base = results["onnxruntime from Python, window by window"]
    print(f"\n## silero full graph (If, state), {n} windows of 512 samples: µs of CPU per window")
    for name, us in results.items():
        print(f"{name:58s} {us:8.1f}  ({us / base:.2f}x Python onnxruntime)")
    with tempfile.TemporaryDirectory() as d:
        for hidden in (64, 1024):
            n, contenders = dense_contenders(dense_model(os.path.join(d, f"dense{hidden}.onnx"), hidden), args.seconds * 3)
            results = median_per_window(contenders, n, args.rounds)
            base = results["onnxruntime from Python, window by window"]
            print(f"\n## dense classifier 400 -> {hidden} -> 8 (MatMul, Add, Relu, Softmax), {n} windows: µs of CPU per window")
            for name, us in results.items():
                print(f"{name:58s} {us:8.1f}  ({us / base:.2f}x Python onnxruntime)")



if __name__ == "__main__":
    main()
