"""A hypothesis state machine drives one stream per runtime through the same calls
(push, pull, flush, close, in any order, random chunkings and formats, pushes from
several threads and from asyncio) and checks after every step that both runtimes
agree (outputs, error classes, counters) and that every pushed frame is accounted for."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import remotemedia as rm

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="compares the native runtime with the Python one")

FORMATS = [np.int16, np.int32, np.float32, np.float64]


def manifest(frame: int, tail: str) -> dict:
    return {"version": "1", "nodes": [
        {"id": "f", "node_type": "FormatConverter", "params": {"format": "f32"}},
        {"id": "r", "node_type": "Rechunk", "params": {"frame_samples": frame, "tail": tail}}],
        "connections": [{"from": "f", "to": "r"}]}


def outcome(fn):
    """("ok", value) or ("error", class name): what a call did, comparable across runtimes."""
    try:
        return "ok", fn()
    except rm.RemoteMediaError as e:
        return "error", type(e).__name__


class SessionsAgree(RuleBasedStateMachine):
    @initialize(frame=st.integers(1, 700), tail=st.sampled_from(["pad", "emit", "drop"]),
                capacity=st.integers(1, 64), drop_oldest=st.booleans())
    def open(self, frame, tail, capacity, drop_oldest):
        overflow = "drop_oldest" if drop_oldest else "block"
        self.frame, self.tail, self.drop_oldest, self.capacity = frame, tail, drop_oldest, capacity
        self.streams = {rt: rm.Pipeline.from_manifest(manifest(frame, tail), runtime=rt).stream(capacity, overflow)
                        for rt in ("native", "python")}
        self.pushed = 0        # frames accepted since the last flush (both runtimes accept alike)
        self.pushed_all = 0    # frames accepted in all
        self.pulled = 0        # frames pulled in all
        self.closed = False

    def both(self, call):
        """Runs `call(stream)` on each runtime and requires the same outcome class."""
        got = {rt: outcome(lambda s=s: call(s)) for rt, s in self.streams.items()}
        assert got["native"][0] == got["python"][0], got
        if got["native"][0] == "error":
            assert got["native"][1] == got["python"][1], got
        return got

    def accepted(self, frames: int, times: int = 1):
        self.pushed += frames * times
        self.pushed_all += frames * times

    @staticmethod
    def chunk(frames, fmt, seed):
        rng = np.random.default_rng(seed)
        dtype = np.dtype(fmt)
        if dtype.kind == "f":
            x = rng.uniform(-1, 1, frames).astype(dtype)
        else:
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, frames, dtype=dtype, endpoint=True)
        return rm.Audio(x, 16000)

    @rule(frames=st.integers(0, 2000), fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**32 - 1))
    def push(self, frames, fmt, seed):
        audio = self.chunk(frames, fmt, seed)
        got = self.both(lambda s: s.push(audio, timeout=0))
        if got["native"][0] == "ok":
            self.accepted(frames)

    @rule(frames=st.integers(1, 500), threads=st.integers(2, 4), seed=st.integers(0, 2**32 - 1))
    def push_from_threads(self, frames, threads, seed):
        """Identical chunks from several threads at once: any order gives one result.
        Whether a push finds room in a bounded queue would depend on the interleaving,
        so with "block" the queue is drained first and only as many threads push as
        surely fit."""
        if not self.drop_oldest:
            self.pull(0)
            threads = min(threads, self.capacity // (frames // self.frame + 1))
            if threads == 0:
                return
        audio = self.chunk(frames, np.float32, seed)

        def call(s):
            errors = []

            def push():
                try:
                    s.push(audio, timeout=0)
                except rm.RemoteMediaError as e:
                    errors.append(type(e).__name__)

            workers = [threading.Thread(target=push) for _ in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            return sorted(errors)

        got = self.both(call)
        assert got["native"][1] == got["python"][1], got
        self.accepted(frames, threads - len(got["native"][1]))

    @rule(frames=st.integers(1, 500), seed=st.integers(0, 2**32 - 1))
    def push_from_asyncio(self, frames, seed):
        audio = self.chunk(frames, np.float32, seed)

        async def call(s):
            await rm.AsyncStream(s).push(audio, timeout=0)

        got = self.both(lambda s: asyncio.run(call(s)))
        if got["native"][0] == "ok":
            self.accepted(frames)

    @rule(max_items=st.integers(0, 8))
    def pull(self, max_items):
        got = self.both(lambda s: s.pull(0, max_items))
        native, python = got["native"][1], got["python"][1]
        assert [k for k, _ in native] == [k for k, _ in python]
        for (_, a), (_, b) in zip(native, python):
            np.testing.assert_allclose(a.samples, b.samples, rtol=0, atol=1e-7)
        self.pulled += sum(a.frames for _, a in native)
        if max_items == 0:
            self.every_frame_is_accounted_for()

    def every_frame_is_accounted_for(self):
        """With the queue drained: pulled + held in Rechunk == accepted (after tail rules),
        unless drop_oldest dropped items."""
        if self.streams["native"].stats()["dropped"]:
            assert self.drop_oldest, "only drop_oldest drops"
            return
        assert self.pulled + self.pushed % self.frame == self.pushed_all, (self.pulled, self.pushed, self.pushed_all)

    @rule()
    def flush(self):
        got = self.both(lambda s: s.flush())
        if got["native"][0] == "ok":
            # The tail rule decides the frames the flush adds: pad up to whole frames,
            # emit the remainder as is, or drop it.
            partial = self.pushed % self.frame
            if partial and self.tail == "pad":
                self.pushed_all += self.frame - partial
            elif partial and self.tail == "drop":
                self.pushed_all -= partial
            self.pushed = 0

    @rule()
    def close(self):
        self.both(lambda s: s.close())
        self.closed = True

    @precondition(lambda self: self.closed)
    @rule()
    def push_after_close_fails(self):
        got = self.both(lambda s: s.push(self.chunk(4, np.float32, 0), timeout=0))
        assert got["native"] == ("error", "StreamClosedError"), got

    @invariant()
    def counters_agree(self):
        native, python = (s.stats() for s in self.streams.values())
        assert native == python

    def teardown(self):
        for s in getattr(self, "streams", {}).values():
            s.close()


SessionsAgree.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_sessions_agree_and_account_for_every_frame = SessionsAgree.TestCase
