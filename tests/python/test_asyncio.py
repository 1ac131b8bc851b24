"""asyncio streams cannot hang: every way a producer or a consumer can fail ends a
pending `async for` (with the producer's exception, or normally), on both runtimes.
Each scenario runs under a deadline, so a regression fails instead of hanging."""

import asyncio

import numpy as np
import pytest

import remotemedia as rm

DEADLINE_S = 20


def chunk(i: int) -> rm.Audio:
    return rm.Audio(np.full(4, i, np.int32), 16000)


def values(items) -> list[int]:
    return [int(item.samples[0]) for _, item in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, DEADLINE_S))


async def consume(s) -> list:
    return [pair async for pair in s]


def test_produce_pushes_flushes_and_closes(runtime):
    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            s.produce(chunk(i) for i in range(20))
            return await consume(s)

    assert values(run(main())) == list(range(20))


def test_a_failing_producer_ends_the_consumer_with_its_exception(runtime):
    async def chunks():
        for i in range(3):
            yield chunk(i)
        raise ValueError("the microphone went away")

    async def main():
        got = []
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            s.produce(chunks())
            with pytest.raises(ValueError, match="microphone"):
                async for pair in s:
                    got.append(pair)
        return got

    assert values(run(main())) == [0, 1, 2], "items pushed before the failure are handed over first"


def test_a_refused_push_ends_the_consumer_with_that_error(runtime):
    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            s.produce([chunk(0), "not audio", chunk(2)])
            with pytest.raises(rm.InvalidInputError, match="push takes remotemedia.Audio"):
                await consume(s)

    run(main())


def test_fail_from_a_producer_of_ones_own(runtime):
    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            async def producer():
                try:
                    await s.push(chunk(1))
                    raise OSError("socket closed")
                except OSError as e:
                    s.fail(e)

            task = asyncio.create_task(producer())
            with pytest.raises(OSError, match="socket closed"):
                await consume(s)
            await task

    run(main())


def test_an_exception_leaving_async_with_ends_a_consumer_task(runtime):
    async def main():
        consumer = None
        with pytest.raises(KeyError):
            async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
                consumer = asyncio.create_task(consume(s))
                await s.push(chunk(5))
                raise KeyError("the producer's own code failed")
        with pytest.raises(KeyError):
            await consumer

    run(main())


def test_aclose_from_another_task_ends_a_pending_consumer(runtime):
    async def main():
        s = rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream()
        consumer = asyncio.create_task(consume(s))
        await s.push(chunk(7))
        await asyncio.sleep(0.1)
        await asyncio.create_task(s.aclose())
        return await consumer

    assert values(run(main())) == [7]


def test_a_cancelled_producer_closes_the_stream(runtime):
    async def endless():
        i = 0
        while True:
            yield chunk(i)
            i += 1
            await asyncio.sleep(0.001)

    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            task = s.produce(endless())
            await asyncio.sleep(0.05)
            task.cancel()
            got = await consume(s)
        return got

    got = values(run(main()))
    assert got == list(range(len(got))), "what was pushed arrives, in order"


def test_a_failing_consumer_stops_a_producer_blocked_on_a_full_queue(runtime):
    """capacity 1: the producer soon waits for room; the consumer fails; leaving
    `async with` closes the stream, which cancels the blocked push and the task."""

    async def main():
        with pytest.raises(RuntimeError, match="consumer"):
            async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream(capacity=1) as s:
                task = s.produce(chunk(i) for i in range(10_000))
                async for _ in s:
                    raise RuntimeError("the consumer failed")
        assert task.done()

    run(main())


def test_a_second_producer_is_refused(runtime):
    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            s.produce([chunk(0)])
            with pytest.raises(rm.InvalidInputError, match="already has a producer"):
                s.produce([chunk(1)])
            await consume(s)

    run(main())


def test_cheap_pushes_run_on_the_loop_and_costly_ones_in_a_worker_thread(runtime, monkeypatch):
    """No thread hop where the work is shorter than the hop: a push whose recent cost is
    under INLINE_S runs on the event loop's thread (the first one too); once pushes
    cost more, they run in a worker thread, and back once they are cheap again. The
    outputs are the same either way. (INLINE_S raised to 5 ms here, so that "cheap"
    holds on a slow or traced run too.)"""
    import threading
    import time

    import remotemedia.pipeline

    monkeypatch.setattr(remotemedia.pipeline, "INLINE_S", 0.005)
    INLINE_S = remotemedia.pipeline.INLINE_S

    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream() as s:
            inner, threads, delay = s._stream, [], [0.0]
            real_push = inner.push

            def push(*args, **kwargs):
                threads.append(threading.get_ident())
                time.sleep(delay[0])
                real_push(*args, **kwargs)

            inner.push = push
            for i in range(60):  # the moving average forgets the costly ones after about 20
                delay[0] = 10 * INLINE_S if 5 <= i < 10 else 0.0
                await s.push(chunk(i))
            await s.aclose()
            return threads, await consume(s)

    threads, got = run(main())
    loop = threading.get_ident()  # asyncio.run runs the loop on this thread
    on_loop = [t == loop for t in threads]
    assert all(on_loop[:6]), "cheap pushes (and the first costly one, not yet known) run inline"
    assert not any(on_loop[6:11]), "costly pushes go to a worker thread"
    assert all(on_loop[-5:]), "cheap again: inline again"
    assert values(got) == list(range(60))


def test_a_full_queue_is_waited_on_in_a_worker_thread_not_on_the_loop(runtime):
    """With overflow "block", an inline push could wait for room on the loop: pushes go
    to a worker thread once the queue is half full, and the loop keeps running."""
    import threading

    async def main():
        async with rm.Pipeline(runtime=runtime).add_node("id", "PassThrough").astream(capacity=4) as s:
            inner, threads = s._stream, []
            real_push = inner.push

            def push(*args, **kwargs):
                threads.append(threading.get_ident())
                real_push(*args, **kwargs)

            inner.push = push
            for i in range(3):
                await s.push(chunk(i))
            pending = asyncio.create_task(s.push(chunk(3)))
            await asyncio.sleep(0.05)  # the loop runs while that push waits or has run
            got = [await s.__anext__() for _ in range(4)]
            await pending
            await s.aclose()
            return threads, got

    threads, got = run(main())
    loop = threading.get_ident()
    assert [t == loop for t in threads] == [True, True, False, False]
    assert values(got) == [0, 1, 2, 3]
