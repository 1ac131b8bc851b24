"""Session groups: many sessions of one pipeline driven by one call per tick.

Every session's outputs equal a lone stream's fed the same chunks (so the batched
silero forward equals each session alone, to the bit), on both runtimes; errors name
the session and cost only its outputs of that call."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm
from helpers import pyannote_sample
from remotemedia.audiofile import read
from remotemedia.model import silero_package_model

MODEL = silero_package_model()
RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]
needs_model = pytest.mark.skipif(MODEL is None, reason="needs the silero-vad package (pip install --no-deps silero-vad)")


def speech() -> np.ndarray:
    """Real recorded speech (pyannote's telephone call) as int16 at 16 kHz, else a
    voiced-like synthetic signal."""
    sample = pyannote_sample()
    if sample is not None:
        audio = read(sample[0])
        x = audio.samples if audio.samples.ndim == 1 else audio.samples[:, 0]
        if audio.sample_rate == 16000:
            return (np.clip(x, -1, 1) * 32767).astype(np.int16) if x.dtype != np.int16 else x
    t = np.arange(16000 * 20) / 16000
    x = 0.3 * np.sin(2 * np.pi * 140 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (x * 32767).astype(np.int16)


SPEECH = speech()


def vad_pipeline(runtime: str, **params) -> rm.Pipeline:
    params = {"engine": "silero", "threshold": 0.4, **params}
    return rm.Pipeline(runtime=runtime).add_node("v", "VAD", **params)


def lone(pipeline: rm.Pipeline, chunks, flushes) -> list:
    """What a lone stream gives for ``chunks`` (each an int16 array), flushed after the
    chunk indices in ``flushes``."""
    out = []
    with pipeline.stream() as s:
        for i, c in enumerate(chunks):
            s.push(rm.Audio(c, 16000))
            out += s.pull()
            if i in flushes:
                s.flush()
                out += s.pull()
    return out


def as_rows(events) -> list:
    """(frame, score, speech) rows of VAD frames events."""
    rows = []
    for e in events:
        first = round(e["start"] * 1000 / e["frame_ms"])
        rows += [(first + i, np.float32(p), bool(s)) for i, (s, p) in enumerate(zip(e["speech"], e["score"]))]
    return rows


# One step of a schedule: open a session, close one, push to several (chunk sizes), or
# flush one; sessions are named by their position among the open ones.
step = st.one_of(
    st.just(("open",)),
    st.tuples(st.just("close"), st.integers(0, 7)),
    st.tuples(st.just("flush"), st.integers(0, 7)),
    st.tuples(st.just("push"), st.dictionaries(st.integers(0, 7), st.integers(0, 1400), min_size=1, max_size=6)),
)


@needs_model
@pytest.mark.parametrize("runtime", RUNTIMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(step, min_size=1, max_size=30), table=st.booleans())
def test_every_session_equals_a_lone_stream(runtime, schedule, table):
    p = vad_pipeline(runtime)
    g = p.sessions()
    fed: dict[int, list] = {}  # session -> its chunks, and the indices after which it was flushed
    flushed: dict[int, set] = {}
    at: dict[int, int] = {}
    got: dict[int, list] = {}
    rows: dict[int, list] = {}
    closed: dict[int, tuple] = {}

    def take():
        out = g.pull(vad_table=table)
        for sid, key, item in out:
            got.setdefault(sid, []).append((key, item))
        for key, f in out.vad.items():
            assert key == "v"
            for sid, frame, score, speech in zip(f.session.tolist(), f.frame.tolist(), f.score, f.speech.tolist()):
                rows.setdefault(sid, []).append((frame, score, speech))

    for op in schedule + [("open",), ("push", {0: 700, 1: 900})]:
        open_ = g.sessions
        if op[0] == "open":
            sid = g.open()
            fed[sid], flushed[sid], at[sid] = [], set(), 16000 * len(fed)
        elif op[0] == "close" and open_:
            sid = open_[op[1] % len(open_)]
            take()
            g.close(sid)
            closed[sid] = True
        elif op[0] == "flush" and open_:
            sid = open_[op[1] % len(open_)]
            g.flush([sid])
            if fed[sid]:
                flushed[sid].add(len(fed[sid]) - 1)
        elif op[0] == "push" and open_:
            chunks = {}
            for k, n in op[1].items():
                sid = open_[k % len(open_)]
                start = at[sid] % (len(SPEECH) - 1500)
                chunks[sid] = rm.Audio(SPEECH[start:start + n], 16000)
            for sid, audio in chunks.items():
                fed[sid].append(audio.samples)
                at[sid] += len(audio.samples)
            g.push(chunks)
        take()
    for sid in fed:
        if fed[sid]:
            want = lone(vad_pipeline(runtime), fed[sid], flushed[sid])
            mine = got.get(sid, [])
            if table:
                frames = [item for key, item in want if key == "v"]
                assert rows.get(sid, []) == as_rows(frames), f"session {sid}"
                want = [(key, item) for key, item in want if key != "v"]
            assert mine == want, f"session {sid}"


@needs_model
def test_batched_inference_runs_natively_and_matches_lone_streams_to_the_bit():
    """64 sessions, each a different stretch of speech, pushed in 20 ms ticks: every
    probability equals a lone native stream's exactly (the batch shares products, never
    sums), and the group really batches (one forward per tick for all of them shows in
    the node metrics being absent: this checks the native runtime ran)."""
    if not rm.native_available():
        pytest.skip("native library not loaded")
    p = vad_pipeline("native")
    assert p.runtime == "native"
    g = p.sessions(workers=2)  # two threads, a batch of 32 each
    ids = [g.open() for _ in range(64)]
    streams = {sid: SPEECH[sid * 4000: sid * 4000 + 16000] for sid in ids}
    for t in range(0, 16000, 320):
        g.push({sid: rm.Audio(x[t:t + 320], 16000) for sid, x in streams.items()})
    g.flush()
    f = g.pull().vad["v"]
    assert len(f.frame) == 64 * 32
    speech_frames = 0
    for sid, x in streams.items():
        want = as_rows([item for key, item in vad_pipeline("native").run(rm.Audio(x, 16000)).items() if key == "v"][0])
        mine = f.session == sid
        assert list(zip(f.frame[mine].tolist(), f.score[mine], f.speech[mine].tolist())) == want
        speech_frames += int(f.speech[mine].sum())
    assert speech_frames > 0  # real speech: the comparison covers both decisions
    stats = g.stats()  # the windows really ran batched: 32 sessions a pass on each of two threads
    assert stats["inference_inputs"] == 64 * 31 and stats["inference_passes"] == 2 * 31, stats
    assert stats["ticks"] == 50 and stats["sessions"] == 64


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_errors_name_the_session_and_the_others_go_on(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("g", "Gain", gain_db=0.0)
    g = p.sessions()
    a, b = g.open(), g.open()
    x = rm.Audio(np.ones(160, np.float32), 16000)
    with pytest.raises(rm.SessionError) as e:
        g.push({a: x, 99: x, b: x})
    assert list(e.value.failures) == [99]
    assert isinstance(e.value.failures[99], rm.InvalidInputError)
    assert "session 99 was never opened" in str(e.value)
    assert isinstance(e.value, rm.RemoteMediaError)
    assert [(sid, key) for sid, key, _ in g.pull()] == [(a, "g"), (b, "g")]
    g.close(a)
    with pytest.raises(rm.SessionError, match=f"session {a} is closed"):
        g.push({a: x})
    with pytest.raises(rm.InvalidInputError, match="closed"):
        g.close(a)
    with pytest.raises(rm.InvalidInputError):
        g.push({"a": x})
    with pytest.raises(rm.InvalidInputError):
        g.push([x])
    with pytest.raises(rm.InvalidInputError):
        g.pull(-1)
    g.push({b: x})
    assert g.queued(b)["queue_depth"] >= 1
    assert g.sessions == [b] and len(g) == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_failing_session_loses_only_its_own_outputs(runtime):
    """A chunk one session's pipeline refuses (another rate than its stream's) fails
    that session; the others' outputs of the same tick are queued."""
    p = rm.Pipeline(runtime=runtime).add_node("v", "VAD")
    g = p.sessions()
    a, b = g.open(), g.open()
    x16 = rm.Audio(np.zeros(480, np.float32), 16000)
    g.push({a: x16, b: x16})
    g.pull()
    with pytest.raises(rm.SessionError) as e:
        g.push({a: rm.Audio(np.zeros(960, np.float32), 32000), b: x16})
    assert list(e.value.failures) == [a]
    assert [sid for sid, _, _ in g.pull(vad_table=False)] == [b]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_queues_drop_their_oldest_past_capacity(runtime):
    g = rm.Pipeline(runtime=runtime).add_node("g", "Gain", gain_db=0.0).sessions(capacity=2)
    a = g.open()
    for k in range(5):
        g.push({a: rm.Audio(np.full(10, k, np.float32), 16000)})
    assert g.queued(a) == {"queue_depth": 2, "dropped": 3}
    assert [item.samples[0] for _, _, item in g.pull()] == [3.0, 4.0]


@needs_model
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_push_block_equals_pushing_each_session(runtime):
    """One array for every session's frame of a tick gives what per-session chunks give."""
    ids_block, ids_dict = [], []
    block_group, dict_group = vad_pipeline(runtime).sessions(), vad_pipeline(runtime).sessions()
    for _ in range(3):
        ids_block.append(block_group.open())
        ids_dict.append(dict_group.open())
    streams = np.stack([SPEECH[k * 8000:k * 8000 + 8000] for k in range(3)])
    for t in range(0, 8000, 480):
        block = np.ascontiguousarray(streams[:, t:t + 480])
        block_group.push_block(ids_block, block, 16000)
        dict_group.push({sid: rm.Audio(row, 16000) for sid, row in zip(ids_dict, block)})
    a, b = block_group.pull().vad["v"], dict_group.pull().vad["v"]
    assert len(a.frame) == 3 * 15
    assert np.array_equal(a.frame, b.frame) and np.array_equal(a.score, b.score) and np.array_equal(a.speech, b.speech)
    with pytest.raises(rm.SessionError) as e:
        block_group.push_block([ids_block[0], 77], np.zeros((2, 320), np.int16), 16000)
    assert list(e.value.failures) == [77]
    for bad in (np.zeros((3, 320), np.int16)[:, ::2], np.zeros(320, np.int16), [[0] * 320] * 3):
        with pytest.raises(rm.InvalidInputError):
            block_group.push_block(ids_block, bad, 16000)
    with pytest.raises(rm.InvalidInputError):
        block_group.push_block(ids_block[:2], np.zeros((3, 320), np.int16), 16000)
    with pytest.raises(rm.InvalidInputError):
        block_group.push_block([-1, 2, 3], np.zeros((3, 320), np.int16), 16000)


@needs_model
def test_workers_split_a_tick_and_give_the_same_results():
    if not rm.native_available():
        pytest.skip("native library not loaded")
    results = []
    for workers in (1, 3):
        g = vad_pipeline("native").sessions(workers=workers)
        ids = [g.open() for _ in range(100)]  # three threads of at least one batch each
        for t in range(0, 4800, 320):
            g.push({sid: rm.Audio(SPEECH[sid * 1000 + t:sid * 1000 + t + 320], 16000) for sid in ids})
        results.append(g.pull().vad["v"])
        stats = g.stats()
        assert stats["inference_inputs"] == 100 * 9 and stats["inference_passes"] == 9 * workers, stats
    assert all(np.array_equal(x, y) for x, y in zip(results[0], results[1]))
    assert len(results[0].frame) == 100 * 9
    with pytest.raises(rm.InvalidInputError):
        vad_pipeline("native").sessions(workers=0)


@needs_model
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_apush_batches_tasks_of_one_loop_turn_and_returns_each_its_own(runtime):
    """Tasks pushing at their own pace: each gets its own session's outputs, equal to a
    lone stream's; a tick waits for every open session, or max_delay_ms for a late one."""
    import asyncio

    g = vad_pipeline(runtime).sessions(max_delay_ms=5)
    ids = [g.open() for _ in range(4)]
    data = {sid: SPEECH[sid * 7000:sid * 7000 + 6400] for sid in ids}
    got: dict = {sid: [] for sid in ids}

    async def session(sid, late: bool):
        for t in range(0, 6400, 320):
            out = await g.apush(sid, rm.Audio(data[sid][t:t + 320], 16000))
            frames = out.vad.get("v")
            assert all(frames.session == sid) if frames is not None else True
            got[sid] += list(zip(frames.frame.tolist(), frames.score, frames.speech.tolist())) if frames else []
            await asyncio.sleep(0.002 if late else 0)

    async def main():
        await asyncio.gather(*(session(sid, late=sid == ids[-1]) for sid in ids))
        with pytest.raises(rm.InvalidInputError):
            await g.apush(999, rm.Audio(data[ids[0]][:320], 16000))
        with pytest.raises(rm.InvalidInputError):  # refused in its own task, before any tick
            await g.apush(ids[0], np.zeros(320, np.int16))

    asyncio.run(main())
    for sid in ids:
        want = lone(vad_pipeline(runtime), [data[sid][t:t + 320] for t in range(0, 6400, 320)], set())
        assert got[sid] == as_rows([item for key, item in want if key == "v"]), f"session {sid}"
    assert g.longest_tick_s > 0
