"""Issue 30: places where the two runtimes answered differently, each a test on both
runtimes, and hypothesis parity over extreme audio (huge finite values, many channels,
long noise) through Resample and VAD."""

import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm
import test_parity as parity
from remotemedia.model import silero_package_model

RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]
both = pytest.mark.skipif(len(RUNTIMES) < 2, reason="compares the native runtime with the Python one")


def resampled(runtime, x, rate, target):
    out = rm.Pipeline(runtime=runtime).add_node("r", "Resample", target_rate=target).run(rm.Audio(x, rate))
    return np.concatenate([a.samples for a in out["r"]]) if out.get("r") else np.zeros(0, np.float32)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("peak", [1e36, 3e38, float(np.finfo(np.float32).max)])
def test_resample_takes_huge_finite_samples(runtime, peak):
    """Item 1: samples near f32's largest are resampled (an FFT of them used to overflow
    into NaN natively, and the user got an FFT library's message)."""
    rng = np.random.default_rng(1)
    x = (np.sign(rng.standard_normal(9600)) * peak).astype(np.float32)
    y = resampled(runtime, x, 48000, 16000)
    assert len(y) == 3200 and not np.isnan(y).any()


@both
@pytest.mark.parametrize("peak", [1e36, 3e38])
def test_the_runtimes_resample_huge_samples_alike(peak):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4800, 2)) * peak / 4).clip(-peak, peak).astype(np.float32)
    a, b = (resampled(r, x, 44100, 16000).astype(np.float64) for r in ("native", "python"))
    assert a.shape == b.shape
    assert (np.isfinite(a) == np.isfinite(b)).all()
    finite = np.isfinite(a)
    np.testing.assert_allclose(a[finite], b[finite], rtol=0, atol=1e-6 * np.abs(b[finite]).max())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_more_than_65535_channels_is_refused_alike(runtime):
    """Item 2: the native runtime refused 65,536 channels or more, the Python one took them."""
    p = rm.Pipeline(runtime=runtime).add_node("g", "PassThrough")
    with pytest.raises(rm.InvalidInputError, match="65536 channels is more than 65535"):
        p.run(rm.Audio(np.zeros((2, 65536), np.float32), 16000))
    assert p.run(rm.Audio(np.zeros((2, 300), np.float32), 16000))["g"][0].channels == 300


@pytest.mark.parametrize("value", [np.zeros(960, np.float16), [[1.0, 2.0], [3.0]], "loud", None, np.zeros((2, 0), np.float32),
                                   np.zeros((2, 2, 2), np.float32)])
def test_audio_samples_are_checked_when_assigned(value):
    """Item 5: an Audio changed after construction escaped as KeyError, AttributeError or
    OverflowError at the first call; now the assignment itself says what is wrong."""
    a = rm.Audio(np.zeros(8, np.float32), 16000)
    with pytest.raises(rm.InvalidInputError):
        a.samples = value
    assert a.samples.dtype == np.float32 and len(a.samples) == 8, "nothing changed"


@pytest.mark.parametrize("value", [-5, 0, 2**40, 1.5, "16000", True, None])
def test_audio_rates_are_checked_when_assigned(value):
    a = rm.Audio(np.zeros(8, np.float32), 16000)
    with pytest.raises(rm.InvalidInputError, match="sample_rate"):
        a.sample_rate = value
    with pytest.raises(rm.InvalidInputError, match="no attribute 'rate'"):
        a.rate = 8000
    assert a.sample_rate == 16000


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_assigned_audio_that_is_valid_runs(runtime):
    a = rm.Audio(np.zeros(8, np.float32), 16000)
    a.samples, a.sample_rate = [0.5, -0.5, 0.25], 8000
    out = rm.Pipeline(runtime=runtime).add_node("g", "PassThrough").run(a)["g"][0]
    assert out.sample_rate == 8000 and list(out.samples) == [0.5, -0.5, 0.25]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("max_items", [2**70, 2**64, 2**63])
def test_pull_takes_any_item_count(runtime, max_items):
    """Item 5: pull(max_items=2**70) overflowed the C size_t natively."""
    with rm.Pipeline(runtime=runtime).add_node("g", "PassThrough").stream() as s:
        for _ in range(3):
            s.push(rm.Audio(np.zeros(4, np.float32), 16000))
        assert len(s.pull(max_items=max_items)) == 3


@st.composite
def extreme_audio(draw):
    """Valid but extreme audio: huge finite values, many channels, long noise, silence."""
    kind = draw(st.sampled_from(["huge", "channels", "noise", "silence", "spikes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100, 48000]))
    if kind == "huge":
        x = (rng.standard_normal(draw(st.integers(1, 6000))) * draw(st.sampled_from([1e30, 1e37, 3e38]))).clip(-3.4e38, 3.4e38)
    elif kind == "channels":
        x = rng.uniform(-1, 1, (draw(st.integers(1, 300)), draw(st.integers(2, 300))))
    elif kind == "noise":
        x = rng.standard_normal(draw(st.integers(10_000, 60_000))) * 0.3
    elif kind == "silence":
        x = np.zeros(draw(st.integers(0, 5000)))
    else:
        x = np.zeros(draw(st.integers(1, 5000)))
        x[rng.integers(0, len(x), 5)] = rng.choice([-1.0, 1.0, 3e38, -3e38], 5)
    return rm.Audio(x.astype(np.float32), rate)


def chain(draw_target, vad):
    nodes = [{"id": "r", "node_type": "Resample", "params": {"target_rate": draw_target}}]
    connections = []
    if vad:
        nodes += [{"id": "m", "node_type": "Downmix", "params": {}}, {"id": "v", "node_type": "VAD", "params": {}}]
        connections = [{"from": "r", "to": "m"}, {"from": "m", "to": "v"}]
    return {"version": "1", "nodes": nodes, "connections": connections}


def outcome(pipeline, audio):
    try:
        return "ok", pipeline.run(audio)
    except rm.RemoteMediaError as e:
        return "error", (type(e).__name__, str(e))


@both
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(audio=extreme_audio(), target=st.sampled_from([8000, 16000, 32000, 48000]))
def test_the_runtimes_agree_on_extreme_audio_through_resample(audio, target):
    manifest = chain(target, False)
    got = [outcome(rm.Pipeline.from_manifest(json.loads(json.dumps(manifest)), runtime=r), audio) for r in ("native", "python")]
    assert got[0][0] == got[1][0], got
    if got[0][0] == "error":
        assert got[0][1] == got[1][1]
        return
    native, python = got[0][1], got[1][1]
    assert sorted(native) == sorted(python)
    for key in native:
        assert len(native[key]) == len(python[key]), key
        for a, b in zip(native[key], python[key]):
            if isinstance(a, rm.Audio):
                x, y = a.samples.astype(np.float64), b.samples.astype(np.float64)
                assert x.shape == y.shape and a.sample_rate == b.sample_rate
                assert (np.isfinite(x) == np.isfinite(y)).all()
                # an f32 FFT's error is relative to its block's peak: 1e-6 of the input's
                scale = max(float(np.abs(audio.samples).max(initial=0.0)), 1.0)
                np.testing.assert_allclose(x[np.isfinite(x)], y[np.isfinite(y)], rtol=0, atol=1e-6 * scale)
            else:
                assert close(a, b), (key, a, b)


def close(a, b) -> bool:
    """JSON events alike: the same keys, flags and counts; scores within 1e-5 (the
    native runtime computes in f32, its twin in f64)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and not isinstance(b, bool):
        return abs(a - b) <= 1e-5
    return a == b and type(a) is type(b)


def records(caplog, runtime, manifest, audio):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="remotemedia"):
        try:
            rm.Pipeline.from_manifest(json.loads(json.dumps(manifest)), runtime=runtime).run(audio)
        except rm.RemoteMediaError:
            pass
    return [(r.levelname, r.getMessage()) for r in caplog.records if "executor::call" in r.getMessage()]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_retries_and_the_breaker_are_logged(caplog, runtime):
    """Item 4: retry and circuit-breaker events were logged by the native runtime only."""
    fault = {"id": "f", "node_type": "Fault", "params": {"fail_first": 3, "mode": "transient"},
             "retry": {"max_retries": 1, "base_ms": 0}, "circuit_breaker": {"failures": 1, "cooldown_ms": 1000}}
    got = records(caplog, runtime, {"version": "1", "nodes": [fault]}, rm.Audio(np.zeros(4, np.float32), 16000))
    assert [level for level, _ in got] == ["INFO", "WARNING", "WARNING"], got
    assert "retrying node call node=f attempt=1" in got[0][1] and "circuit breaker opened node=f" in got[2][1]


@both
def test_the_runtimes_log_the_same_records(caplog):
    fault = {"id": "f", "node_type": "Fault", "params": {"fail_first": 2, "mode": "transient"},
             "retry": {"max_retries": 3, "base_ms": 0}}
    audio = rm.Audio(np.zeros(4, np.float32), 16000)
    native, python = (records(caplog, r, {"version": "1", "nodes": [fault]}, audio) for r in ("native", "python"))
    assert native == python and len(native) == 2


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_node_that_panics_is_not_called_again(runtime):
    """Item 3: one rule. A native node's panic, or an exception out of a built-in node's
    Python twin that is not a RemoteMediaError (the twin's panic), poisons the instance:
    every later call fails saying so. The native runtime did; the Python one called it again."""
    m = {"version": "1", "nodes": [{"id": "f", "node_type": "Fault", "params": {"fail_first": 1, "mode": "panic"}}]}
    p = rm.Pipeline.from_manifest(m, runtime=runtime)
    audio = rm.Audio(np.zeros(4, np.float32), 16000)
    with pytest.raises(rm.NodeError, match="panicked"):
        p.run(audio)
    for _ in range(2):
        with pytest.raises(rm.NodeError, match="is poisoned .* not called again"):
            p.run(audio)


class Flaky(rm.Node):
    """A user's node whose first call (per runtime, across its instances: a run re-creates
    them) raises a plain ValueError."""
    node_type = "FlakyAgreeTest"
    calls: dict = {}

    def __init__(self, runtime: str):
        self.runtime = runtime

    def process(self, data):
        Flaky.calls[self.runtime] = Flaky.calls.get(self.runtime, 0) + 1
        if Flaky.calls[self.runtime] == 1:
            raise ValueError("first call fails")
        return data


rm.register_node(Flaky)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_python_nodes_exception_is_an_ordinary_failure(runtime):
    """The other half of the rule: a Python node's own exceptions are failures (NodeError),
    not breakage, on both runtimes; the node is called again."""
    p = rm.Pipeline(runtime=runtime).add_node("f", "FlakyAgreeTest", runtime=runtime)
    audio = rm.Audio(np.zeros(4, np.float32), 16000)
    with pytest.raises(rm.NodeError, match="first call fails"):
        p.run(audio)
    assert len(p.run(audio)["f"]) == 1


@st.composite
def extreme_vad_audio(draw):
    """Extreme but valid mono audio at the VAD's rates: huge values, isolated spikes near
    f32's largest, long noise, silence."""
    kind = draw(st.sampled_from(["huge", "spikes", "noise", "silence"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rate = draw(st.sampled_from([8000, 16000, 32000, 48000]))
    n = draw(st.integers(1, 20000))
    if kind == "huge":
        x = (rng.standard_normal(n) * draw(st.sampled_from([1e3, 1e30, 3e38]))).clip(-3.4e38, 3.4e38)
    elif kind == "spikes":
        x = np.zeros(n)
        x[rng.integers(0, n, 5)] = rng.choice([-1.0, 1.0, 3e38, -3e38], 5)
    elif kind == "noise":
        x = rng.standard_normal(n) * 0.3
    else:
        x = np.zeros(n)
    return rm.Audio(x.astype(np.float32), rate)


@both
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(audio=extreme_vad_audio(), engine=st.sampled_from(["spectral", "silero"] if silero_package_model() else ["spectral"]))
def test_the_runtimes_agree_on_extreme_audio_through_vad(audio, engine):
    """Frame decisions and segments identical, scores within 1e-4 (f32 natively, f64 in
    the twin). Fed to the VAD directly: behind a Resample, huge spikes leave f32
    round-off (1e-7 of the spike) where the twin has f64's, and the VAD's clip to ±1e6
    makes that round-off loud, so such chains differ by design (AUDIO.md). The silero
    engine is drawn where the silero-vad package is installed (its model file)."""
    if engine == "silero":
        audio = rm.Audio(audio.samples, 16000)
    manifest = {"version": "1", "nodes": [{"id": "v", "node_type": "VAD", "params": {"engine": engine}}]}
    got = [outcome(rm.Pipeline.from_manifest(manifest, runtime=r), audio) for r in ("native", "python")]
    assert got[0][0] == got[1][0], got
    if got[0][0] == "error":
        assert got[0][1] == got[1][1]
        return
    native, python = got[0][1], got[1][1]
    frames = [[e for e in out.get("v", [])] for out in (native, python)]
    assert [s for e in frames[0] for s in e["speech"]] == [s for e in frames[1] for s in e["speech"]]
    np.testing.assert_allclose([s for e in frames[0] for s in e["score"]], [s for e in frames[1] for s in e["score"]], atol=1e-4)
    assert native.get("v.segments") == python.get("v.segments")


@both
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(manifest=parity.pipelines(), x=extreme_audio())
def test_random_pipelines_agree_on_extreme_audio(manifest, x):
    """test_parity's random pipelines (PassThrough, Gain, FormatConverter, Downmix,
    Rechunk, Fault, retries and breakers) fed extreme audio: outputs byte for byte, errors
    by class, node and message."""
    native, python = parity.both(manifest)
    assert parity.outcome(parity.run_once, native, x) == parity.outcome(parity.run_once, python, x)


@both
def test_an_inserted_converters_error_names_the_same_node():
    """Found by the test above: an inserted Downmix that cannot take 300 channels was
    reported at nodes[4] natively (its place in the plan) and nodes[0] by the Python
    runtime (its place among the inserted)."""
    # m mixes down what s brings (300 ch) and the mono of d: d's must first become 300 ch
    manifest = {"version": "1", "nodes": [{"id": "s", "node_type": "PassThrough", "params": {}},
                                          {"id": "d", "node_type": "Downmix", "params": {}},
                                          {"id": "m", "node_type": "Downmix", "params": {}}],
                "connections": [{"from": "s", "to": "d"}, {"from": "s", "to": "m"}, {"from": "d", "to": "m"}]}
    audio = rm.Audio(np.zeros((480, 300), np.float32), 16000)
    errors = []
    for runtime in ("native", "python"):
        with pytest.raises(rm.ManifestError) as e:
            rm.Pipeline.from_manifest(manifest, runtime=runtime).run(audio)
        errors.append((e.value.path, str(e.value)))
    assert errors[0] == errors[1] and errors[0][0] == "nodes[3].params.map", errors
