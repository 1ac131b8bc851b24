"""asyncio streams against sync streams (issue 27's asyncio part): N concurrent
``astream``s of a VAD(silero) pipeline, each fed 16 kHz int16 in 20 ms pushes by its own
task and drained by its own ``async for``, against N sync streams pushed and pulled
round-robin from one thread. Process CPU per push, medians of rounds, order
alternating; also the longest a heartbeat task waited for its turn on the loop, from
the first push on.

    python benchmarks/bench_asyncio.py [--streams 100] [--seconds 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np

import remotemedia as rm
from machine import cpu_model

RATE = 16000


def chunks(seconds: float) -> list[rm.Audio]:
    x = (np.random.default_rng(0).standard_normal(int(RATE * seconds)) * 3000).astype(np.int16)
    return [rm.Audio(x[i:i + 320], RATE) for i in range(0, len(x), 320)]


def sync_round(pipeline, n: int, data: list) -> float:
    streams = [pipeline.stream() for _ in range(n)]
    start = time.process_time()
    for c in data:
        for s in streams:
            s.push(c)
            s.pull()
    spent = time.process_time() - start
    for s in streams:
        s.close()
    return spent / (n * len(data)) * 1e6


async def async_round(pipeline, n: int, data: list, push: bool = True) -> tuple[float, float]:
    """CPU µs a push and the heartbeat's longest gap (ms). Without ``push``, the same
    tasks only wait for their chunks: the cost of the arrivals."""
    opened, stop, gaps = asyncio.Event(), asyncio.Event(), [0.0]
    waiting = [n]

    async def heartbeat():
        await opened.wait()  # from the first push on: opening 100 streams is not a push
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps[0], last = max(gaps[0], now - last), now

    async def session():
        async with pipeline.astream() as s:
            async def consume():
                async for _ in s:
                    pass

            consumer = asyncio.create_task(consume())
            waiting[0] -= 1
            if not waiting[0]:
                opened.set()
            await opened.wait()
            for c in data:
                if push:
                    await s.push(c)
                await asyncio.sleep(0)  # the next chunk "arrives": other sessions run
            await s.aclose()
            await consumer

    beat = asyncio.create_task(heartbeat())
    start = time.process_time()
    await asyncio.gather(*(session() for _ in range(n)))
    spent = time.process_time() - start
    stop.set()
    await beat
    return spent / (n * len(data)) * 1e6, gaps[0] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    pipeline = rm.Pipeline().add_node("vad", "VAD", engine="silero")
    data = chunks(args.seconds)
    sync_round(pipeline, 2, data[:50])  # warm-up: the model loaded, first-call costs paid
    asyncio.run(async_round(pipeline, 2, data[:50]))
    sync_us, async_us, arrivals, gaps = [], [], [], []
    for r in range(args.rounds):
        order = ("sync", "async", "arrivals") if r % 2 == 0 else ("arrivals", "async", "sync")
        for kind in order:
            if kind == "sync":
                sync_us.append(sync_round(pipeline, args.streams, data))
            elif kind == "arrivals":
                arrivals.append(asyncio.run(async_round(pipeline, args.streams, data, push=False))[0])
            else:
                us, gap = asyncio.run(async_round(pipeline, args.streams, data))
                async_us.append(us)
                gaps.append(gap)
    s, a, idle = statistics.median(sync_us), statistics.median(async_us), statistics.median(arrivals)
    print(f"# asyncio vs sync streams, {time.strftime('%Y-%m-%d')}, {cpu_model()}, {args.streams} streams of "
          f"VAD(silero), {len(data)} pushes of 20 ms each, median of {args.rounds} rounds, process CPU")
    print(f"sync: {s:.1f} us a push (push + pull)")
    print(f"astream: {a:.1f} us a push (push + async for), of which {idle:.1f} us the tasks' own waiting for "
          f"chunks (asyncio.sleep(0), measured without pushes): {(a - idle) / s:.2f}x sync without it, "
          f"{a / s:.2f}x with it")
    print(f"longest gap of a heartbeat task: {statistics.median(gaps):.2f} ms (one round of the loop over every "
          f"session's ready work: {args.streams} pushes)")


if __name__ == "__main__":
    main()
