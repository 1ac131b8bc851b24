"""Soak: many streaming sessions for a long time, with faults injected at random.

200 sessions of one native pipeline (48 kHz f32 → Resample 16 kHz → VAD) each stream a
3 s utterance in 20 ms chunks, round after round (a round ends with a flush, so the
next starts fresh). In each round a session is hit by a fault with probability
``--fault-rate``:

- ``nan``: a chunk holding NaN is pushed (expected: InvalidInputError, nothing queued);
- ``close``: the session is closed in the middle of the round and a push follows it
  (expected: StreamClosedError); a new session takes its place;
- ``overflow``: the round runs on a session of capacity 4 with drop-oldest overflow and
  is pulled only at its end (expected: no error, items dropped and counted);
- ``crash`` and ``hang``: after the round, one call of a second pipeline whose node runs
  in its own process segfaults or hangs past its timeout (expected: NodeError,
  NodeTimeoutError); the round itself must be untouched.

Every round no fault touched must give what a one-shot run of its utterance gives
(frame decisions, scores and segments, identical); every fault must be reported as its
RemoteMediaError; RSS is sampled, and after the first fifth of the run (warm-up) it
must stay within ``--rss-slack-mb`` of its value then. Prints one JSON summary on stdout
(progress goes to stderr) and exits 1 if any check failed.

    python benchmarks/soak.py --minutes 30            # the documented run
    python benchmarks/soak.py --minutes 2             # what CI runs
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time

import numpy as np

import remotemedia as rm

RATE, CHUNK = 48000, 960  # 20 ms
FAULTS = ("nan", "close", "overflow", "crash", "hang")
EXPECTED = {"nan": rm.InvalidInputError, "close": rm.StreamClosedError, "crash": rm.NodeError, "hang": rm.NodeTimeoutError}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def utterance(seed: int) -> np.ndarray:
    """3 s: quiet noise, a voiced burst with harmonics, a pause, another burst."""
    rng = np.random.default_rng(seed)
    t = np.arange(3 * RATE) / RATE
    x = 0.002 * rng.standard_normal(len(t))
    for start, length, f0 in ((0.4, 0.9, 120 + 60 * rng.random()), (1.7, 0.8, 180 + 60 * rng.random())):
        on = (t >= start) & (t < start + length)
        voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12)) * 0.2
        x[on] += voice[on] * np.hanning(on.sum())
    return x.astype(np.float32)


def flat(items) -> dict:
    """What a round gave, independent of how chunks grouped the events."""
    frames = [v for k, v in items if k == "v"]
    return {"speech": [s for e in frames for s in e["speech"]], "score": [s for e in frames for s in e["score"]],
            "segments": [v for k, v in items if k == "v.segments"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--rss-slack-mb", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    manifest = {"version": "1", "nodes": [{"id": "r", "node_type": "Resample", "params": {"target_rate": 16000}},
                                          {"id": "v", "node_type": "VAD", "params": {}}],
                "connections": [{"from": "r", "to": "v"}]}
    pipeline = rm.Pipeline.from_manifest(manifest, runtime="native")
    faulty = {kind: rm.Pipeline(runtime="native").add_node(
        "f", "Fault", fail_first=10**9, mode="segfault" if kind == "crash" else "hang", hang_ms=60_000, timeout_ms=200,
        isolation="process", retry={"max_retries": 0}, circuit_breaker={"failures": 1000}) for kind in ("crash", "hang")}
    signals = [utterance(k) for k in range(8)]
    references = [flat([(k, v) for k, vs in pipeline.run(rm.Audio(x, RATE)).items() for v in vs]) for x in signals]
    sessions = [pipeline.stream() for _ in range(args.sessions)]
    counts = {"rounds": 0, "clean_rounds": 0, "mismatches": 0, "dropped": 0, **{f"faults_{k}": 0 for k in FAULTS},
              "wrong_errors": []}
    rss, started = [], time.monotonic()
    deadline = started + args.minutes * 60
    next_sample = started
    while time.monotonic() < deadline:
        for i in range(len(sessions)):
            which = (i + counts["rounds"]) % len(signals)
            x, fault = signals[which], (rng.choice(FAULTS) if rng.random() < args.fault_rate else None)
            chunks = [x[k:k + CHUNK] for k in range(0, len(x), CHUNK)]
            items: list = []
            s = sessions[i]
            try:
                if fault == "overflow":
                    s = pipeline.stream(capacity=4, overflow="drop_oldest")
                for n, c in enumerate(chunks):
                    if fault == "nan" and n == len(chunks) // 2:
                        bad = c.copy()
                        bad[5] = np.nan
                        s.push(rm.Audio(bad, RATE))
                    if fault == "close" and n == len(chunks) // 2:
                        s.close()
                        s.push(rm.Audio(c, RATE))
                    s.push(rm.Audio(c, RATE))
                    if fault != "overflow":
                        items += s.pull()
                s.flush()
                items += s.pull(timeout=5)
                if fault == "overflow":
                    counts["dropped"] += s.stats()["dropped"]
                    s.close()
                if fault in ("crash", "hang"):  # beside the round, which it must not touch
                    faulty[fault].run(rm.Audio(x[:CHUNK], RATE))
            except rm.RemoteMediaError as e:
                want = EXPECTED.get(fault)
                if want is None or not isinstance(e, want):
                    counts["wrong_errors"].append(f"{fault}: {type(e).__name__}: {e}")
                if fault == "close":
                    sessions[i] = pipeline.stream()
                elif s is sessions[i]:  # the stream goes on: end the round, so the next starts fresh
                    s.flush()
                    s.pull(timeout=5)
            if fault is not None:
                counts[f"faults_{fault}"] += 1
            if fault in (None, "crash", "hang"):  # faults in another pipeline leave this round clean
                counts["clean_rounds"] += 1
                if flat(items) != references[which]:
                    counts["mismatches"] += 1
            now = time.monotonic()
            if now >= next_sample:
                rss.append((round(now - started, 1), round(rss_mb(), 1)))
                next_sample = now + max(args.minutes * 60 / 60, 1.0)
                print(f"{now - started:7.0f} s  rounds {counts['rounds']:7d}  rss {rss[-1][1]:7.1f} MB", file=sys.stderr)
            counts["rounds"] += 1
    for s in sessions:
        s.close()
    warm = [m for t, m in rss if t >= args.minutes * 60 / 5]
    growth = (max(warm) - warm[0]) if warm else 0.0
    failed = {"mismatches": counts["mismatches"] > 0, "wrong_errors": bool(counts["wrong_errors"]),
              "rss_growth": growth > args.rss_slack_mb, "no_faults": sum(counts[f"faults_{k}"] for k in FAULTS) == 0}
    summary = {"date": time.strftime("%Y-%m-%d"), "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                                                if line.startswith("model name")), platform.processor()),
               "minutes": args.minutes, "sessions": args.sessions, **counts, "wrong_errors": counts["wrong_errors"][:10],
               "rss_mb_after_warmup": [warm[0], max(warm)] if warm else None, "rss_growth_mb": round(growth, 1),
               "failed": [k for k, v in failed.items() if v]}
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
