"""Streaming sessions on both runtimes: equality with one-shot runs, accounting,
backpressure, concurrency, asyncio, the GIL, zero copy and memory."""

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from math import ceil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="exercises the native runtime")

SHAPES = {
    "convert-resample-vad": [("FormatConverter", {"format": "f32"}), ("Resample", {"target_rate": 16000}),
                             ("VAD", {})],
    "convert-mono-resample": [("FormatConverter", {"format": "f32"}), ("Downmix", {}),
                              ("Resample", {"target_rate": 16000, "quality": "balanced"})],
    "rechunk-gain": [("Rechunk", {"frame_samples": 333}), ("Gain", {"gain_db": -3.0})],
}


def chain(nodes):
    ids = [f"n{i}" for i in range(len(nodes))]
    return {"version": "1", "nodes": [{"id": i, "node_type": t, "params": p} for i, (t, p) in zip(ids, nodes)],
            "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]}


def speechy(seconds: float, channels: int = 1, seed: int = 0) -> rm.Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(int(48000 * seconds)) / 48000
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0) + 0.02 * rng.standard_normal(len(t))
    x = np.stack([x] * channels, 1) if channels > 1 else x
    return rm.Audio(np.rint(x * 32767).astype(np.int16), 48000)


def split(audio: rm.Audio, sizes: list[int]):
    at = 0
    for size in sizes:
        if at >= audio.frames:
            break
        yield rm.Audio(audio.samples[at:at + size], audio.sample_rate)
        at += size
    if at < audio.frames:
        yield rm.Audio(audio.samples[at:], audio.sample_rate)


def grouped(pairs):
    out = {}
    for key, item in pairs:
        out.setdefault(key, []).append(item)
    return out


def flat(items):
    audio = [i.samples for i in items if isinstance(i, rm.Audio)]
    return np.concatenate(audio) if audio else np.zeros(0)


def decisions(items):
    return [s for e in items for s in e["speech"]]


@settings(max_examples=30, deadline=None)
@given(shape=st.sampled_from(sorted(SHAPES)), sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=40),
       channels=st.integers(1, 2), runtime=st.sampled_from(["native", "python"]))
def test_streaming_equals_one_shot(shape, sizes, channels, runtime):
    if shape == "convert-resample-vad" and channels == 2:
        channels = 1  # the VAD takes mono
    audio = speechy(1.0, channels)
    p = rm.Pipeline.from_manifest(chain(SHAPES[shape]), runtime=runtime)
    whole = p.run(audio)
    streamed = grouped(p.process(split(audio, sizes)))
    assert set(streamed) == set(whole)
    for key in whole:
        if key.endswith("n2") and shape == "convert-resample-vad":
            assert decisions(streamed[key]) == decisions(whole[key])
        elif key.endswith(".segments"):
            assert streamed[key] == whole[key]
        else:
            np.testing.assert_array_equal(flat(streamed[key]), flat(whole[key]))


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=30), seconds=st.floats(0.01, 1.0))
def test_every_sample_is_accounted_for(sizes, seconds):
    audio = speechy(seconds)
    p = rm.Pipeline.from_manifest(chain(SHAPES["convert-resample-vad"][:2]))
    out = flat(item for _, item in p.process(split(audio, sizes)))
    assert len(out) == ceil(audio.frames * 16000 / 48000)
    vad = rm.Pipeline.from_manifest(chain(SHAPES["convert-resample-vad"]))
    frames = decisions(item for key, item in vad.process(split(audio, sizes)) if key == "n2")
    assert len(frames) == ceil(audio.frames / 3) // 480, "every whole 30 ms frame gets a decision"


@pytest.mark.parametrize("runtime", ["native", "python"])
def test_backpressure_policies(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("p", "PassThrough")
    chunk = rm.Audio(np.zeros(160, np.float32), 16000)
    with p.stream(capacity=2) as s:
        s.push(chunk, timeout=0)
        s.push(chunk, timeout=0)
        with pytest.raises(rm.QueueFullError):
            s.push(chunk, timeout=0.01)
        consumer = threading.Timer(0.05, lambda: s.pull(max_items=1))
        consumer.start()
        s.push(chunk, timeout=5)  # waits for the consumer
        consumer.join()
        assert s.stats()["dropped"] == 0 and s.stats()["queue_depth"] == 2
    with p.stream(capacity=3, overflow="drop_oldest") as s:
        for _ in range(10):
            s.push(chunk, timeout=0)
        assert s.stats() == {"queue_depth": 3, "dropped": 7, "chunks_in": 10, "items_out": 10}
        assert len(s.pull()) == 3
    with pytest.raises(rm.StreamClosedError):
        s.push(chunk)


def test_hundred_concurrent_sessions_match_sequential():
    p = rm.Pipeline.from_manifest(chain(SHAPES["convert-resample-vad"]))
    inputs = [speechy(0.5, seed=i) for i in range(100)]
    expected = [grouped(p.process(split(a, [960] * 100))) for a in inputs]
    results = [None] * 100

    def worker(i):
        results[i] = grouped(p.process(split(inputs[i], [960] * 100)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert decisions(got["n2"]) == decisions(want["n2"])
        assert got.get("n2.segments") == want.get("n2.segments")


def test_gil_is_released_during_native_pushes():
    p = rm.Pipeline.from_manifest(chain(SHAPES["convert-resample-vad"]))
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        # Lengthen the one native call until it lasts long enough for the ticker to
        # have had several turns, however fast this machine is.
        seconds = 20.0
        while True:
            audio = speechy(seconds)
            with p.stream() as s:
                started = time.perf_counter()
                s.push(audio)  # one long native call
                ended = time.perf_counter()
            if ended - started > 0.05 or seconds >= 640:
                break
            seconds *= 2
    finally:
        done.set()
        t.join()
    during = [x for x in ticks if started < x < ended]
    assert ended - started > 0.05
    assert len(during) >= 2, f"the ticker ran {len(during)} times during a {ended - started:.3f} s push"


def test_asyncio_stream_does_not_block_the_loop():
    p = rm.Pipeline.from_manifest(chain(SHAPES["convert-resample-vad"]))
    audio = speechy(2.0)
    chunks = list(split(audio, [960] * 200))

    async def main():
        beats = 0
        stop = asyncio.Event()

        async def heartbeat():
            nonlocal beats
            while not stop.is_set():
                beats += 1
                await asyncio.sleep(0)

        async with p.astream() as s:
            hb = asyncio.create_task(heartbeat())

            async def produce():
                for c in chunks:
                    await s.push(c)
                await s.flush()
                await s.aclose()

            producer = asyncio.create_task(produce())
            got = [pair async for pair in s]
            await producer
            stop.set()
            await hb
        return got, beats

    got, beats = asyncio.run(main())
    assert decisions(i for k, i in got if k == "n2") == decisions(p.run(audio)["n2"])
    assert beats > len(chunks), "the event loop kept running while native work happened"


def test_push_does_not_copy_input_in_python():
    p = rm.Pipeline().add_node("g", "Gain", gain_db=0.0)
    x = np.ones(2_000_000, np.float32)
    with p.stream() as s:
        s.push(rm.Audio(x[:16], 16000))
        s.pull()
        tracemalloc.start()
        s.push(rm.Audio(x, 16000))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out = s.pull()
    assert peak < x.nbytes // 20, f"push traced {peak} bytes for an {x.nbytes}-byte chunk"
    assert not out[0][1].samples.flags.owndata


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_output_memory_lives_exactly_as_long_as_its_views():
    # In a fresh process: memory that earlier tests freed stays resident in the heap and
    # would serve these outputs without the resident size growing.
    code = textwrap.dedent("""
        import gc
        import numpy as np
        import remotemedia as rm

        def resident():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096

        p = rm.Pipeline().add_node("g", "Gain", gain_db=0.0)
        x = np.ones(4_000_000, np.float32)  # 16 MB per output
        gc.collect()
        base = resident()
        with p.stream() as s:
            for _ in range(8):
                s.push(rm.Audio(x, 16000))
            views = [item.samples for _, item in s.pull()]
        gc.collect()
        held = resident() - base
        assert held > 7 * x.nbytes, f"8 x 16 MB of outputs should be resident, {held >> 20} MB is"
        assert all(v[123] == 1.0 and v[-1] == 1.0 for v in views), "views still read the right data"
        del views
        gc.collect()
        assert resident() - base < held / 4, "native outputs are freed with their last view"
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_sessions_closed_mid_stream_free_everything():
    p = rm.Pipeline.from_manifest(chain(SHAPES["convert-resample-vad"]))
    chunk = rm.Audio(np.zeros(48000, np.int16), 48000)

    def churn(n):
        for _ in range(n):
            s = p.stream()
            s.push(chunk)
            s.close()
            del s
        gc.collect()

    churn(50)
    before = resident()
    churn(500)  # a leaked session (node state, resampler buffers) would be > 100 KB each
    assert resident() - before < 20 * 2**20


@pytest.mark.parametrize("runtime", ["native", "python"])
def test_close_cancels_a_blocked_push(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("p", "PassThrough")
    chunk = rm.Audio(np.zeros(16, np.float32), 16000)
    s = p.stream(capacity=1)
    s.push(chunk)
    raised = []

    def pusher():
        try:
            s.push(chunk, timeout=10)
        except rm.RemoteMediaError as e:
            raised.append(e)

    t = threading.Thread(target=pusher)
    t.start()
    time.sleep(0.05)  # let the push block on the full queue
    s.close()
    t.join(5)
    assert len(raised) == 1 and isinstance(raised[0], rm.CancelledError)
    assert s.stats()["chunks_in"] == 1


class Counter(rm.Node):
    """Counts the chunks of a stream; clears nothing in flush (the runtime resets after it)."""

    node_type = "Counter"

    def __init__(self):
        self.n = 0

    def process(self, data):
        self.n += 1
        return {"n": self.n}


def test_the_runtime_resets_every_node_after_flush(runtime):
    rm.register_node(Counter)
    p = rm.Pipeline(runtime=runtime).add_node("c", Counter)
    chunk = rm.Audio(np.zeros(4, np.float32), 16000)
    with p.stream() as s:
        for _ in range(2):  # two streams on one session, and a one-shot run between
            for _ in range(3):
                s.push(chunk)
            s.flush()
            assert [v["n"] for _, v in s.pull(timeout=5)] == [1, 2, 3]
            assert p.run(chunk)["c"] == [{"n": 1}]
