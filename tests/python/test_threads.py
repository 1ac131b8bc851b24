"""One pipeline or stream shared by many threads: calls take turns, nothing is lost,
shared, or failed spuriously, on both runtimes."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import remotemedia as rm

CHAIN = {"version": "1", "nodes": [
    {"id": "g", "node_type": "Gain", "params": {"gain_db": -3.0}},
    {"id": "rs", "node_type": "Resample", "params": {"target_rate": 16000, "quality": "fast"}},
    {"id": "rc", "node_type": "Rechunk", "params": {"frame_samples": 160}}],
    "connections": [{"from": "g", "to": "rs"}, {"from": "rs", "to": "rc"}]}


def signal(seed: int, frames: int = 4800) -> rm.Audio:
    return rm.Audio(np.random.default_rng(seed).uniform(-1, 1, frames).astype(np.float32), 48000)


def frames_of(result: dict) -> bytes:
    return b"".join(a.samples.tobytes() for a in result["rc"])


def test_eight_threads_running_one_pipeline_get_the_sequential_results(runtime):
    p = rm.Pipeline.from_manifest(CHAIN, runtime=runtime)
    inputs = [signal(i) for i in range(64)]
    expected = [frames_of(p.run(x)) for x in inputs]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda x: frames_of(p.run(x)), inputs * 2))
    assert got == expected * 2
    assert p.metrics()["pipeline"]["runs"] == 3 * len(inputs)


def test_four_threads_pulling_one_stream_take_every_item_once(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("id", "PassThrough")
    pulled, stop = [], threading.Event()
    lock = threading.Lock()

    def puller():
        while not stop.is_set():
            for _, item in s.pull(timeout=0.01):
                with lock:
                    pulled.append(int(item.samples[0]))

    with p.stream(capacity=10_000) as s:
        threads = [threading.Thread(target=puller) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(2000):
            s.push(rm.Audio(np.full(4, i, np.int32), 16000))
        while s.stats()["queue_depth"]:
            pass
        stop.set()
        for t in threads:
            t.join()
    assert sorted(pulled) == list(range(2000))


def test_pushes_from_many_threads_are_all_processed(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("id", "PassThrough")
    with p.stream(capacity=100_000) as s:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: s.push(rm.Audio(np.full(2, i, np.int32), 16000)), range(1000)))
        items = s.pull()
        assert sorted(int(a.samples[0]) for _, a in items) == list(range(1000))
        assert s.stats()["chunks_in"] == 1000


def test_concurrent_streams_never_fail_spuriously(runtime):
    p = rm.Pipeline.from_manifest(CHAIN, runtime=runtime)
    x = signal(1)

    def one(_):
        with p.stream() as s:
            s.push(x)
            s.flush()
            return frames_of({"rc": [a for _, a in s.pull()]})

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(200)))
    assert len(set(results)) == 1 and results[0] == frames_of(p.run(x))


class CallsBack(rm.Node):
    """Runs the pipeline it is part of, from inside its own call."""

    node_type = "ThreadsCallsBack"
    pipeline = None

    def process(self, data):
        return CallsBack.pipeline.run(data)["n"][0]


def test_a_node_calling_its_own_pipeline_is_refused_not_deadlocked(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("n", CallsBack, runtime_hint="python")
    CallsBack.pipeline = p
    # The node lets the InvalidInputError through, which is how a node refuses its input.
    with pytest.raises(rm.InvalidInputError) as info:
        p.run(rm.Audio(np.zeros(4, np.float32), 16000))
    assert info.value.node_id == "n"
    assert isinstance(info.value.__cause__, rm.InvalidInputError)
    assert "re-entrant" in str(info.value.__cause__)


def test_aclose_racing_a_pull_hands_over_every_queued_item(runtime):
    """A pull that began before aclose() and came back empty must not end the iteration
    while items pushed in the meantime are still queued (the window is widened here)."""
    import asyncio

    p = rm.Pipeline(runtime=runtime).add_node("id", "PassThrough")

    async def main():
        s = p.astream()
        inner, closed = s._stream, threading.Event()
        real_pull, first = inner.pull, [True]

        def slow_first_pull(timeout=0.0, max_items=0):
            if first[0]:
                first[0] = False
                closed.wait(5)  # began before the close, returns empty after it
                return []
            return real_pull(timeout, max_items)

        inner.pull = slow_first_pull

        async def consume():
            return [int(item.samples[0]) async for _, item in s]

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        for i in range(5):
            await s.push(rm.Audio(np.full(4, i, np.int32), 16000))
        await s.aclose()
        closed.set()
        return await consumer

    assert asyncio.run(main()) == list(range(5))


FLUSH_ENDS_THE_STREAM = [
    ("Rechunk", {"frame_samples": 333, "tail": "drop"}),
    ("Rechunk", {"frame_samples": 333, "tail": "emit"}),
    ("Rechunk", {"frame_samples": 333, "tail": "pad"}),
    ("Resample", {"target_rate": 16000}),
    ("Resample", {"target_rate": 16000, "quality": "fast"}),
    ("VAD", {"frame_ms": 30}),
    ("Downmix", {}),
    ("Gain", {"gain_db": -3.0}),
]


@pytest.mark.parametrize("node_type,params", FLUSH_ENDS_THE_STREAM)
def test_after_flush_a_stream_starts_afresh(runtime, node_type, params):
    """flush ends the stream: what a session gives after it equals a fresh session's
    output for the same chunks (no state carried over), for every stateful node."""
    p = rm.Pipeline(runtime=runtime).add_node("n", node_type, **params)
    rng = np.random.default_rng(7)
    first = [rm.Audio(rng.uniform(-0.5, 0.5, 1000).astype(np.float32), 48000) for _ in range(3)]
    second = [rm.Audio(rng.uniform(-0.5, 0.5, n).astype(np.float32), 48000) for n in (1500, 701, 2222)]

    def stream(chunks, s):
        for c in chunks:
            s.push(c)
        s.flush()
        return [(k, i.samples.tobytes() if isinstance(i, rm.Audio) else i) for k, i in s.pull()]

    with p.stream() as fresh:
        expected = stream(second, fresh)
    with p.stream() as reused:
        stream(first, reused)
        assert stream(second, reused) == expected
