"""Many live sessions in one process (issue 27): N sessions of VAD(engine="silero"),
16 kHz int16, 20 ms ticks pushed from one thread, against what a voice-agent server
would otherwise run, in one run:

- group: ``pipeline.sessions()``, each tick one ``push_block`` for every session and one
  ``pull`` (frame decisions as numpy columns); silero windows batched across sessions;
- group (dict push): the same, each tick a ``push({id: Audio})``;
- shared onnxruntime: one session of silero's model, per-session LSTM state and
  context kept in Python, one run per session-window (as a server sharing one model
  would write it);
- onnxruntime per stream: one InferenceSession per stream, silero's own ONNX with its
  state input, as pipecat and livekit build them (N <= 100).

onnxruntime is pinned to one intra-op and one inter-op thread, as our runtime uses
one. Reported per contender and N: process CPU per second of session audio (median of
rounds, order alternating), sessions per core, RSS per session, p50/p99 tick time.
Then asyncio: N ``astream``s against sync streams (bench_asyncio), and an idle group.

    python benchmarks/bench_sessions.py [--seconds 4] [--rounds 3] [--sizes 1,100,1000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS threads would spin inside the CPU counted

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time

import numpy as np

import remotemedia as rm
from bench_asyncio import async_round, sync_round
from bench_asyncio import chunks as async_chunks
from machine import cpu_model, rss_kb
from remotemedia.model import silero_package_model

RATE, TICK = 16000, 320
WINDOW, CONTEXT = 512, 64


def audio(seconds: float, n: int) -> np.ndarray:
    """n sessions' int16 audio: speech-like bursts over noise, each session shifted."""
    rng = np.random.default_rng(0)
    t = np.arange(int(RATE * (seconds + n * 0.01))) / RATE
    voiced = np.sin(2 * np.pi * 130 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0.2)
    x = (0.25 * voiced + 0.02 * rng.standard_normal(t.size)) * 32767
    return x.astype(np.int16)


class Group:
    name = "group"

    def __init__(self, n: int, block: bool = True):
        self.g = rm.Pipeline().add_node("v", "VAD", engine="silero").sessions()
        self.ids = np.array([self.g.open() for _ in range(n)], np.uint64)
        self.block = block
        if not block:
            self.name = "group (dict push)"

    def tick(self, frames: np.ndarray) -> None:
        if self.block:
            self.g.push_block(self.ids, frames, RATE)
        else:
            self.g.push({sid: rm.Audio(f, RATE) for sid, f in zip(self.ids.tolist(), frames)})
        self.g.pull()


class SharedOrt:
    """One onnxruntime session; per session: LSTM state, context and pending samples."""

    name = "shared onnxruntime"

    def __init__(self, n: int):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(silero_package_model(), opts, providers=["CPUExecutionProvider"])
        self.state = [(np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)) for _ in range(n)]
        self.context = [np.zeros(CONTEXT, np.float32) for _ in range(n)]
        self.pending = [np.zeros(0, np.float32) for _ in range(n)]
        self.probs: list = []

    def tick(self, frames: np.ndarray) -> None:
        for i, f in enumerate(frames):
            pending = np.concatenate([self.pending[i], f.astype(np.float32) / 32768])
            while len(pending) >= WINDOW:
                window, pending = pending[:WINDOW], pending[WINDOW:]
                x = np.concatenate([self.context[i], window])[None, :]
                h, c = self.state[i]
                p, h, c = self.session.run(None, {"input": x, "h": h, "c": c})
                self.state[i], self.context[i] = (h, c), window[-CONTEXT:]
                self.probs.append(float(p.ravel()[0]) > 0.5)
            self.pending[i] = pending
        self.probs.clear()


class OrtPerStream:
    """One InferenceSession per stream on silero's own ONNX (input, state, sr)."""

    name = "onnxruntime per stream"

    def __init__(self, n: int):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        path = str(silero_package_model()).replace("silero_vad_16k_sequence.onnx", "silero_vad.onnx")
        self.sessions = [ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]) for _ in range(n)]
        self.state = [np.zeros((2, 1, 128), np.float32) for _ in range(n)]
        self.context = [np.zeros((1, CONTEXT), np.float32) for _ in range(n)]
        self.pending = [np.zeros(0, np.float32) for _ in range(n)]
        self.sr = np.array(RATE, np.int64)

    def tick(self, frames: np.ndarray) -> None:
        for i, f in enumerate(frames):
            pending = np.concatenate([self.pending[i], f.astype(np.float32) / 32768])
            while len(pending) >= WINDOW:
                window, pending = pending[None, :WINDOW], pending[WINDOW:]
                x = np.concatenate([self.context[i], window], axis=1)
                p, self.state[i] = self.sessions[i].run(None, {"input": x, "state": self.state[i], "sr": self.sr})
                self.context[i] = window[:, -CONTEXT:]
            self.pending[i] = pending


def blocks_of(n: int, seconds: float) -> list[np.ndarray]:
    """Each tick's n × 320 block of the sessions' audio."""
    x = audio(seconds, n)
    frames = np.stack([x[i * 160:i * 160 + int(RATE * seconds)] for i in range(n)])  # n × samples
    return [np.ascontiguousarray(frames[:, t * TICK:(t + 1) * TICK]) for t in range(frames.shape[1] // TICK)]


def rss_per_session(name: str, n: int) -> float:
    """KB of RSS a session of contender ``name`` adds, measured in a fresh process (RSS
    within this one depends on what earlier rounds left to the allocator): n sessions
    opened and fed 1 s of ticks, the RSS growth from before they were made."""
    out = subprocess.run([sys.executable, __file__, "--rss", name, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["kb"]


def measure_rss(name: str, n: int) -> None:
    blocks = blocks_of(n, 1.0)
    make = dict(CONTENDERS)[name]
    gc.collect()
    before = rss_kb()
    contender = make(n)
    for b in blocks:
        contender.tick(b)
    print(json.dumps({"kb": (rss_kb() - before) / n}))


def run(make, n: int, seconds: float) -> dict:
    """One round: CPU µs per session-second, tick times (ms)."""
    blocks = blocks_of(n, seconds)
    contender = make(n)
    for b in blocks[:5]:  # warm-up: first-call costs paid
        contender.tick(b)
    times = []
    start = time.process_time()
    for b in blocks:
        t0 = time.perf_counter()
        contender.tick(b)
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - start
    del contender
    return {"us": cpu / (n * len(blocks) * TICK / RATE) * 1e6,
            "p50": np.percentile(times, 50) * 1e3, "p99": np.percentile(times, 99) * 1e3}


async def apush_round(n: int, seconds: float) -> tuple[float, float, float]:
    """n tasks, each its session's 20 ms chunks through ``apush`` at its own pace (a
    chunk every 20 ms of wall time, sessions offset): CPU µs per session-second, the
    longest tick, and the longest a heartbeat task waited for the loop (ms)."""
    g = rm.Pipeline().add_node("v", "VAD", engine="silero").sessions(max_delay_ms=10)
    ids = [g.open() for _ in range(n)]
    x = audio(seconds, n)
    stop, gaps = asyncio.Event(), [0.0]

    async def heartbeat():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps[0], last = max(gaps[0], now - last - 0.001), now

    async def session(k: int, sid: int):
        await asyncio.sleep(k * 0.02 / n)  # arrivals spread over the 20 ms
        start = time.perf_counter()
        for t, at in enumerate(range(0, int(RATE * seconds) - TICK, TICK)):
            await g.apush(sid, rm.Audio(x[k * 160 + at:k * 160 + at + TICK], RATE))
            await asyncio.sleep(max(0.0, start + (t + 1) * 0.02 - time.perf_counter()))

    beat = asyncio.create_task(heartbeat())
    cpu = time.process_time()
    await asyncio.gather(*(session(k, sid) for k, sid in enumerate(ids)))
    cpu = time.process_time() - cpu
    stop.set()
    await beat
    return cpu / (n * seconds) * 1e6, g.longest_tick_s * 1e3, gaps[0] * 1e3


def idle(n: int, seconds: float) -> float:
    """Percent of a core used by a group of n open sessions while nothing is pushed."""
    g = rm.Pipeline().add_node("v", "VAD", engine="silero").sessions()
    ids = [g.open() for _ in range(n)]
    g.push({sid: rm.Audio(np.zeros(TICK, np.int16), RATE) for sid in ids})
    start = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - start) / seconds * 100


CONTENDERS = [("group", lambda n: Group(n)), ("group (dict push)", lambda n: Group(n, block=False)),
              ("shared onnxruntime", lambda n: SharedOrt(n)), ("onnxruntime per stream", lambda n: OrtPerStream(n))]


def main():
    if sys.argv[1:2] == ["--rss"]:
        return measure_rss(sys.argv[2], int(sys.argv[3]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="1,100,1000")
    ap.add_argument("--ort-max", type=int, default=200, help="largest N run on the shared onnxruntime contender")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if silero_package_model() is None:
        raise SystemExit("needs the silero-vad package (pip install --no-deps silero-vad)")
    contenders = CONTENDERS
    print(f"# many sessions, {time.strftime('%Y-%m-%d')}, {cpu_model()}, VAD(silero) at 16 kHz int16, 20 ms ticks "
          f"from one thread, {args.seconds:g} s of audio per session, median of {args.rounds} rounds, process CPU")
    print(f"{'contender':24} {'N':>5} {'us/session-s':>13} {'sessions/core':>14} {'RSS KB/session':>15} "
          f"{'tick p50 ms':>12} {'tick p99 ms':>12}")
    results: dict = {}
    for n in sizes:
        chosen = [(name, make) for name, make in contenders
                  if not (name == "onnxruntime per stream" and n > 100) and not (name == "shared onnxruntime" and n > args.ort_max)
                  and not (name == "group (dict push)" and n > 100)]
        rounds: dict = {name: [] for name, _ in chosen}
        for r in range(args.rounds):
            for name, make in chosen if r % 2 == 0 else chosen[::-1]:
                rounds[name].append(run(make, n, args.seconds))
        for name, _ in chosen:
            med = {k: statistics.median(x[k] for x in rounds[name]) for k in rounds[name][0]}
            med["rss"] = rss_per_session(name, n)
            results[(name, n)] = med
            print(f"{name:24} {n:>5} {med['us']:>13.0f} {1e6 / med['us']:>14.0f} {med['rss']:>15.1f} "
                  f"{med['p50']:>12.2f} {med['p99']:>12.2f}")
    shared = [results[("shared onnxruntime", n)]["us"] for n in sizes if ("shared onnxruntime", n) in results]
    if shared:
        ref = statistics.median(shared)
        for n in sizes:
            print(f"group at N={n}: {ref / results[('group', n)]['us']:.1f}x cheaper in CPU than shared onnxruntime "
                  f"({ref:.0f} us/session-s, median over its N)")
    # asyncio: astreams against sync streams, as bench_asyncio measures them
    pipeline = rm.Pipeline().add_node("vad", "VAD", engine="silero")
    data = async_chunks(2.0)
    sync_round(pipeline, 2, data[:50])
    asyncio.run(async_round(pipeline, 2, data[:50]))
    sync_us, async_us = [], []
    for r in range(args.rounds):
        for kind in ("sync", "async") if r % 2 == 0 else ("async", "sync"):
            if kind == "sync":
                sync_us.append(sync_round(pipeline, 100, data))
            else:
                async_us.append(asyncio.run(async_round(pipeline, 100, data))[0])
    s, a = statistics.median(sync_us), statistics.median(async_us)
    print(f"asyncio, 100 astreams of VAD(silero), 20 ms pushes: {a:.1f} us a push against {s:.1f} us for sync "
          f"streams ({a / s:.2f}x)")
    us, tick, gap = asyncio.run(apush_round(100, args.seconds))
    print(f"asyncio apush, 100 sessions each in its own task at its own pace (20 ms apart, arrivals spread, "
          f"max_delay_ms=10): {us:.0f} us/session-s; longest tick {tick:.2f} ms, longest wait of a heartbeat "
          f"task for the loop {gap:.2f} ms")
    print(f"idle: 1000 open sessions, no pushes for {args.idle_seconds:g} s: {idle(1000, args.idle_seconds):.3f} % of a core")


if __name__ == "__main__":
    main()
