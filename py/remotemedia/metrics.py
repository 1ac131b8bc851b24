"""Metrics of the pure-Python runtime, in the same JSON shape as the native runtime's
(docs/metrics.schema.json): counters plus a log-scale histogram of call times (each
octave split into 4 equal buckets, as in native/src/metrics.rs)."""

from __future__ import annotations

import bisect
import math
from collections import deque

from ._contract import CLOCK_PUSHES
from .audio import Audio

BUCKETS = 256


def _upper(b: int) -> float:
    if b < 4:
        return float(b)
    octave, quarter = divmod(b, 4)
    return (4 + quarter + 1) * 2.0 ** (octave - 2) - 1


class NodeMetrics:
    def __init__(self):
        self.calls = self.errors = self.retries = 0
        self.items_in = self.items_out = self.samples_in = self.samples_out = self.bytes_in = self.bytes_out = 0
        self.count = self.total_ns = self.max_ns = 0
        self.min_ns = None
        self.buckets = [0] * BUCKETS

    def record(self, ns: int) -> None:
        self.count += 1
        self.total_ns += ns
        if self.min_ns is None or ns < self.min_ns:
            self.min_ns = ns
        if ns > self.max_ns:
            self.max_ns = ns
        # the bucket: 4 per octave, as native metrics::Histogram::bucket
        if ns < 4:
            self.buckets[ns] += 1
            return
        octave = ns.bit_length() - 1
        b = 4 * octave + ((ns >> (octave - 2)) & 3)
        self.buckets[b if b < BUCKETS else BUCKETS - 1] += 1

    def count_in(self, item) -> None:
        """Counts one input item."""
        self.items_in += 1
        if isinstance(item, Audio):
            self.samples_in += item.samples.size
            self.bytes_in += item.samples.nbytes

    def count_out(self, pairs) -> None:
        """Counts the output items of (port, item) ``pairs``."""
        for _, item in pairs:
            self.items_out += 1
            if isinstance(item, Audio):
                self.samples_out += item.samples.size
                self.bytes_out += item.samples.nbytes

    def quantile_ns(self, q: float) -> float:
        if not self.count:
            return 0.0
        target, seen = max(1, math.ceil(q * self.count)), 0
        for i, n in enumerate(self.buckets):
            seen += n
            if seen >= target:
                return min(max(_upper(i), self.min_ns), self.max_ns)
        return float(self.max_ns)

    def time_json(self) -> dict:
        us = lambda ns: round(ns / 1000, 3)  # noqa: E731
        return {"count": self.count, "total": us(self.total_ns), "min": us(self.min_ns or 0),
                "max": us(self.max_ns), "mean": us(self.total_ns / self.count if self.count else 0),
                "p50": us(self.quantile_ns(0.5)), "p95": us(self.quantile_ns(0.95)), "p99": us(self.quantile_ns(0.99))}



class InputClock:
    """When the input's media time arrived: (media end in seconds, push start in ns) of
    each recent push (native: metrics::InputClock)."""

    def __init__(self):
        self.pushes: deque = deque(maxlen=CLOCK_PUSHES)
        self.media = 0.0

    def push(self, seconds: float, at_ns: int) -> None:
        self.media += seconds
        self.pushes.append((self.media, at_ns))

    def arrival(self, t: float) -> int | None:
        """When the push that brought media time ``t`` began (the last push for a later time)."""
        pushes = self.pushes
        if not pushes:
            return None
        if len(pushes) == 1 or pushes[-2][0] < t - 1e-9:  # the usual case: the last push
            return pushes[-1][1]
        i = bisect.bisect_left(pushes, (t - 1e-9,))  # the first push ending at or after t
        return pushes[min(i, len(pushes) - 1)][1]

    def restart(self) -> None:
        self.pushes.clear()
        self.media = 0.0


class SinkMetrics(NodeMetrics):
    """Push→output latency of one sink output (native: metrics::SinkMetrics)."""

    def __init__(self, budget_ms: float | None = None):
        super().__init__()
        self.budget_ms, self.overruns, self.frames, self.rate = budget_ms, 0, 0, 0

    def timed(self, item, clock: InputClock, now_ns: int) -> None:
        if isinstance(item, Audio):
            rate = item.sample_rate
            if rate != self.rate:
                self.frames, self.rate = 0, rate
            self.frames += len(item.samples)
            t = self.frames / rate
        else:
            marks = [item.get(k) for k in ("end", "start")] if isinstance(item, dict) else []
            t = next((float(v) for v in marks if isinstance(v, (int, float)) and not isinstance(v, bool)), clock.media)
        at = clock.arrival(t)
        if at is None:
            return
        ns = max(now_ns - at, 0)
        self.record(ns)
        if self.budget_ms is not None and ns / 1e6 > self.budget_ms:
            self.overruns += 1

    def restart(self) -> None:
        self.frames = 0

    def to_json(self) -> dict:
        ms = lambda ns: round(ns / 1000) / 1000  # noqa: E731
        return {"latency_ms": {"count": self.count, "p50": ms(self.quantile_ns(0.5)), "p99": ms(self.quantile_ns(0.99)),
                               "max": ms(self.max_ns)},
                "budget_ms": self.budget_ms, "budget_overruns": self.overruns}


class PipelineMetrics:
    def __init__(self):
        self.runs = self.pushes = self.wall_ns = 0
        self.audio_seconds = 0.0


# Heap attribution needs the native allocator; the pure-Python runtime reports none.
UNMEASURED = {"measured": False, "allocations": 0, "allocated_bytes": 0, "freed_bytes": 0, "large_allocations": 0}


def to_json(name: str, pipeline: PipelineMetrics, nodes: list[tuple[str, str, str, NodeMetrics]],
            sinks: dict[str, SinkMetrics]) -> dict:
    wall_s = pipeline.wall_ns / 1e9
    return {
        "sinks": {key: m.to_json() for key, m in sinks.items()},
        "pipeline": {"name": name, "runs": pipeline.runs, "pushes": pipeline.pushes,
                     "wall_us": round(wall_s * 1e6, 3), "audio_seconds": pipeline.audio_seconds,
                     "real_time_factor": wall_s / pipeline.audio_seconds if pipeline.audio_seconds else 0.0,
                     "memory": dict(UNMEASURED)},
        "nodes": [{"id": node_id, "node_type": node_type, "runtime": "python", "breaker": breaker,
                   "calls": m.calls, "errors": m.errors, "retries": m.retries, "time_us": m.time_json(),
                   "items_in": m.items_in, "items_out": m.items_out, "samples_in": m.samples_in,
                   "samples_out": m.samples_out, "bytes_in": m.bytes_in, "bytes_out": m.bytes_out,
                   "memory": dict(UNMEASURED)}
                  for node_id, node_type, breaker, m in nodes],
    }
