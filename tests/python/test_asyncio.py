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
