"""Pipeline.run_into and Stream.pull_into: audio written into the caller's array.

Both runtimes must write exactly what ``run``/``pull`` return (concatenated), leave
the rest of ``out`` untouched, and refuse the same things with the same error class
and reason, writing (or taking) nothing.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm
from conftest import RUNTIMES

SENTINEL = {np.dtype(np.float32): -7.0, np.dtype(np.float64): -7.0, np.dtype(np.int16): -7, np.dtype(np.int32): -7}
DTYPES = [np.float32, np.float64, np.int16, np.int32]


def reason(e: Exception) -> str:
    """The reason of a refusal, without the native status prefix."""
    return str(e).removeprefix("invalid argument: ")


def joined(items: list) -> np.ndarray:
    return np.concatenate([a.samples for a in items]) if items else None


# Chains of audio-to-audio nodes, each as (node_type, params).
NODE = st.one_of(
    st.just(("PassThrough", {})),
    st.builds(lambda g: ("Gain", {"gain_db": g}), st.sampled_from([-6.0, 0.0, 3.5])),
    st.builds(lambda f: ("FormatConverter", {"format": f}), st.sampled_from(["f32", "i16", "i32", "f64"])),
    st.builds(lambda r, q: ("Resample", {"target_rate": r, "quality": q}), st.sampled_from([8000, 16000, 22050, 48000]),
              st.sampled_from(["fast", "high"])),
    st.builds(lambda n: ("Rechunk", {"frame_samples": n, "tail": "emit"}), st.integers(1, 700)),
    st.just(("Downmix", {})),
)


def chain(runtime: str, nodes: list) -> rm.Pipeline:
    p = rm.Pipeline(runtime=runtime)
    for i, (node_type, params) in enumerate(nodes):
        p.add_node(f"n{i}", node_type, **params)
        if i:
            p.connect(f"n{i - 1}", f"n{i}")
    return p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(NODE, min_size=1, max_size=3), dtype=st.sampled_from(DTYPES), channels=st.integers(1, 3),
       rate=st.sampled_from([8000, 16000, 44100]), frames=st.integers(0, 3000), slack=st.integers(-50, 50),
       out_dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_run_into_writes_what_run_returns_on_both_runtimes(nodes, dtype, channels, rate, frames, slack, out_dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-0.5, 0.5, (frames, channels)) * (1 if np.dtype(dtype).kind == "f" else 10000)).astype(dtype)
    audio = rm.Audio(x if channels > 1 else x[:, 0].copy(), rate)
    outcomes = []
    for runtime in RUNTIMES:
        p = chain(runtime, nodes)
        result = p.run(audio)
        items = result.get(f"n{len(nodes) - 1}", [])
        want = joined(items)
        out_channels = items[0].channels if items else 1
        capacity = max(0, (0 if want is None else len(want)) + slack)
        shape = (capacity,) if out_channels == 1 else (capacity, out_channels)
        out = np.full(shape, SENTINEL[np.dtype(out_dtype)], out_dtype)
        before = out.copy()
        try:
            n = p.run_into(audio, out)
        except rm.InvalidInputError as e:
            assert np.array_equal(out, before), "a refused run_into wrote into out"
            outcomes.append(("refused", reason(e)))
            continue
        assert want is None or (want.dtype == out.dtype and len(want) <= capacity)
        assert n == (0 if want is None else len(want))
        if n:
            assert np.array_equal(out[:n], want)
        assert np.array_equal(out[n:], before[n:]), "run_into wrote past its frames"
        outcomes.append(("written", n))
    assert all(o == outcomes[0] for o in outcomes), outcomes


def test_run_into_refusals_agree(runtime):
    x = rm.Audio(np.linspace(-0.5, 0.5, 480, dtype=np.float32), 16000)
    gain = rm.Pipeline(runtime=runtime).add_node("g", "Gain")
    cases = [
        (gain, np.zeros(479, np.float32), "'g' emitted 480 frames, out holds 479"),
        (gain, np.zeros(480, np.int16), "'g' emitted f32 audio, out is i16"),
        (gain, np.zeros((480, 2), np.float32), "'g' emitted 1-channel audio, out has 2 channel(s)"),
        (rm.Pipeline(runtime=runtime).add_node("v", "VAD"), np.zeros(480, np.float32), "'v' emitted JSON"),
        (rm.Pipeline(runtime=runtime).add_node("a", "Gain").add_node("b", "PassThrough"), np.zeros(960, np.float32),
         "both 'a' and 'b' emitted audio"),
    ]
    for p, out, why in cases:
        with pytest.raises(rm.InvalidInputError) as info:
            p.run_into(x, out)
        assert reason(info.value) == f"run_into: {why}; nothing was written (run returns outputs of any kind)"
        assert not out.any()


@pytest.mark.parametrize("out, message", [
    ([0.0] * 10, "got list"),
    (np.zeros((4, 2, 2), np.float32), "got a 3-D float32 array"),
    (np.zeros(10, np.uint8), "got a 1-D uint8 array"),
    (np.zeros(20, np.float32)[::2], "writeable, C-contiguous"),
    (np.zeros(10, np.float32).view(), "writeable, C-contiguous"),
])
def test_out_must_be_a_writeable_contiguous_array(runtime, out, message):
    if isinstance(out, np.ndarray) and out.flags.c_contiguous:
        out.flags.writeable = False
    p = rm.Pipeline(runtime=runtime).add_node("g", "Gain")
    for call in (lambda: p.run_into(rm.Audio(np.zeros(4, np.float32), 8000), out),
                 lambda: p.stream().pull_into(out)):
        with pytest.raises(rm.InvalidInputError, match=message):
            call()


def test_stereo_into_a_frames_by_channels_array(runtime):
    x = np.arange(20, dtype=np.int16).reshape(10, 2)
    out = np.zeros((16, 2), np.int16)
    assert rm.Pipeline(runtime=runtime).add_node("p", "PassThrough").run_into(rm.Audio(x, 8000), out) == 10
    assert np.array_equal(out[:10], x) and not out[10:].any()


def test_out_is_not_kept(runtime):
    """The pipeline keeps no view of out: a second run writes only its own frames."""
    p = rm.Pipeline(runtime=runtime).add_node("p", "PassThrough")
    out = np.zeros(8, np.float32)
    p.run_into(rm.Audio(np.ones(8, np.float32), 8000), out)
    out[:] = 5
    assert p.run_into(rm.Audio(np.full(3, 2, np.float32), 8000), out) == 3
    assert out.tolist() == [2, 2, 2, 5, 5, 5, 5, 5]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 600), min_size=1, max_size=8), capacity=st.integers(1, 1500),
       frame=st.integers(1, 400))
def test_pull_into_takes_what_pull_would_in_order(sizes, capacity, frame):
    """Rechunked chunks, taken by pull_into while they fit: the frames taken (whole
    items), then a pull of what stayed queued, give exactly what pull alone gives."""
    chunks = [rm.Audio(np.arange(n, dtype=np.float32) + i * 1000, 16000) for i, n in enumerate(sizes)]
    results = []
    for runtime in RUNTIMES:
        p = rm.Pipeline(runtime=runtime).add_node("c", "Rechunk", frame_samples=frame, tail="emit")

        def stream(p=p):
            return p.stream(capacity=100_000)

        with stream() as s:
            for c in chunks:
                s.push(c)
            s.flush()
            want = joined([a for _, a in s.pull()])
        got = []
        with stream() as s:
            for c in chunks:
                s.push(c)
            s.flush()
            out = np.zeros(capacity, np.float32)
            while True:
                try:
                    n = s.pull_into(out)
                except rm.InvalidInputError as e:
                    assert "out holds" in str(e) and frame > capacity
                    rest = s.pull()  # nothing was taken: the item is still there
                    assert rest and len(rest[0][1].samples) > capacity
                    got.extend(a.samples for _, a in rest)
                    break
                if n == 0:
                    break
                got.append(out[:n].copy())
        got = np.concatenate(got) if got else None
        assert (want is None and got is None) or np.array_equal(got, want)
        results.append(None if got is None else got.tolist())
    assert all(r == results[0] for r in results)


def test_pull_into_leaves_json_queued(runtime):
    """A VAD's JSON event first in the queue: refused, and still there for pull."""
    p = rm.Pipeline(runtime=runtime).add_node("v", "VAD")
    with p.stream() as s:
        s.push(rm.Audio(np.zeros(480, np.float32), 16000))
        depth = s.stats()["queue_depth"]
        assert depth > 0
        with pytest.raises(rm.InvalidInputError) as info:
            s.pull_into(np.zeros(480, np.float32))
        assert reason(info.value) == "pull_into: 'v' emitted JSON; it stays queued (pull returns items of any kind)"
        assert s.stats()["queue_depth"] == depth
        assert all(key == "v" for key, _ in s.pull())


def test_pull_into_times_out_with_zero(runtime):
    with rm.Pipeline(runtime=runtime).add_node("g", "Gain").stream() as s:
        assert s.pull_into(np.zeros(4, np.float32), timeout=0.01) == 0


class Tally(rm.Node):
    """Emits how many chunks it has processed since its last reset."""
    node_type = "TestTally"

    def __init__(self, **params):
        super().__init__(**params)
        self.n = 0

    def process(self, audio):
        self.n += 1
        return rm.Audio(np.full(1, self.n, np.float32), audio.sample_rate)

    def reset(self):
        self.n = 0


class FailOn99(rm.Node):
    """Fails on input whose first sample is 99."""
    node_type = "TestFailOn99"

    def process(self, audio):
        if audio.samples[0] == 99:
            raise ValueError("99")
        return audio


def test_a_run_after_a_failed_run_starts_fresh(runtime):
    """Runs reset nodes only when they are not fresh: after a run that failed midway,
    the next run must still reset the node the failed one left with state."""
    # two sources: Tally runs first in the wave, then FailOn99 may fail the run
    p = rm.Pipeline(runtime=runtime).add_node("t", Tally).add_node("f", FailOn99)
    ok = rm.Audio(np.zeros(2, np.float32), 8000)
    assert p.run(ok)["t"][0].samples.tolist() == [1]
    assert p.run(ok)["t"][0].samples.tolist() == [1]
    with pytest.raises(rm.NodeError):
        p.run(rm.Audio(np.full(2, 99, np.float32), 8000))
    assert p.run(ok)["t"][0].samples.tolist() == [1]
    out = np.zeros(4, np.float32)
    with pytest.raises(rm.InvalidInputError, match="both 't' and 'f'"):
        p.run_into(ok, out)
