"""Both runtimes behave identically on random pipelines: outputs, events, errors (class,
node and message) and metric counts (not timings), for one-shot runs and for streams.

Pipelines mix bit-exact nodes (PassThrough, Gain, FormatConverter, Downmix, Rechunk)
with Fault nodes under random retry and circuit-breaker policies, so failures, retries,
skipped calls and open breakers are all compared, not just the happy path.
"""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="compares against the native runtime")

FORMATS = ["f32", "i16", "i32", "f64"]
# Metric fields that count (timings and heap attribution differ between runtimes by nature).
COUNTS = ("calls", "errors", "retries", "breaker", "items_in", "items_out", "samples_in", "samples_out", "bytes_in", "bytes_out")


@st.composite
def node(draw, node_id):
    kind = draw(st.sampled_from(["PassThrough", "Gain", "FormatConverter", "Downmix", "Rechunk", "Fault", "Fault"]))
    params = {}
    if kind == "Gain":
        params["gain_db"] = draw(st.sampled_from([-12.0, -6.0, 0.0, 3.5]))
    elif kind == "FormatConverter":
        params["format"] = draw(st.sampled_from(FORMATS))
    elif kind == "Downmix":
        if draw(st.booleans()):
            params["map"] = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3))
    elif kind == "Rechunk":
        params["frame_samples"] = draw(st.integers(1, 40))
        params["tail"] = draw(st.sampled_from(["pad", "emit", "drop"]))
    decl = {"id": node_id, "node_type": kind, "params": params, "runtime_hint": draw(st.sampled_from(["auto", "python"]))}
    if kind == "Fault":
        params["fail_first"] = draw(st.integers(0, 4))
        params["mode"] = draw(st.sampled_from(["transient", "permanent"]))
        decl["retry"] = {"max_retries": draw(st.integers(0, 2)), "base_ms": 0}
        decl["circuit_breaker"] = {"failures": draw(st.integers(1, 3)), "cooldown_ms": 3_600_000,
                                   "on_open": draw(st.sampled_from(["fail", "skip"]))}
    return decl


@st.composite
def pipelines(draw, max_nodes=5):
    n = draw(st.integers(1, max_nodes))
    ids = [f"n{i}" for i in range(n)]
    nodes = [draw(node(i)) for i in ids]
    connections = [{"from": ids[i], "to": ids[j]} for i in range(n) for j in range(i + 1, n) if draw(st.booleans())]
    return {"version": "1", "metadata": {"name": "parity"}, "nodes": nodes, "connections": connections}


@st.composite
def audio(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.int16, np.float64])))
    channels = draw(st.integers(1, 3))
    frames = draw(st.integers(0, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-1, 1, (frames, channels))
    x = (x * 20000).astype(dtype) if dtype.kind == "i" else x.astype(dtype)
    return rm.Audio(x if channels > 1 else x.reshape(-1), 16000)


def outcome(call, *args):
    """What ``call(*args)`` gave: ("ok", value) or ("error", class, node_id, message)."""
    try:
        return ("ok", call(*args))
    except rm.RemoteMediaError as e:
        return ("error", type(e).__name__, e.node_id, str(e))


def comparable(value):
    """Outputs as plain data: audio as (dtype, shape, rate, sample bytes)."""
    if isinstance(value, rm.Audio):
        return ("audio", str(value.samples.dtype), value.samples.shape, value.sample_rate, value.samples.tobytes())
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    return value


def run_once(pipeline, x):
    return comparable(pipeline.run(x))


def counts(metrics: dict) -> dict:
    p = metrics["pipeline"]
    return {"pipeline": (p["name"], p["runs"], p["pushes"], round(p["audio_seconds"], 9)),
            "nodes": [{k: n[k] for k in ("id", "node_type", *COUNTS)} for n in metrics["nodes"]],
            **({"session": metrics["session"]} if "session" in metrics else {})}


def both(manifest):
    return [rm.Pipeline.from_manifest(json.loads(json.dumps(manifest)), runtime=r) for r in ("native", "python")]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest=pipelines(), inputs=st.lists(audio(), min_size=1, max_size=3))
def test_runs_agree_on_outputs_errors_and_metrics(manifest, inputs):
    native, python = both(manifest)
    for x in inputs:
        assert outcome(run_once, native, x) == outcome(run_once, python, x)
    assert counts(native.metrics()) == counts(python.metrics())


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest=pipelines(), chunks=st.lists(audio(), min_size=1, max_size=4), flushes=st.lists(st.booleans(), min_size=4, max_size=4))
def test_streams_agree_on_items_errors_and_metrics(manifest, chunks, flushes):
    results = []
    for p in both(manifest):
        log = []
        with p.stream() as s:
            for chunk, flush in zip(chunks, flushes):
                layout = (chunk.samples.dtype, chunk.channels)
                if layout != (chunks[0].samples.dtype, chunks[0].channels):
                    continue  # one layout per stream
                log.append(outcome(s.push, chunk))
                if flush:
                    log.append(outcome(s.flush))
                log.append(comparable(s.pull()))
            log.append(outcome(s.flush))
            log.append(comparable(s.pull()))
            log.append(counts(s.metrics()))
        results.append(log)
    assert results[0] == results[1]


VAD_CHAIN = {"version": "1", "nodes": [
    {"id": "f32", "node_type": "FormatConverter", "params": {"format": "f32"}},
    {"id": "mono", "node_type": "Downmix"},
    {"id": "vad", "node_type": "VAD", "params": {"frame_ms": 10, "hangover_ms": 30, "min_speech_ms": 20}}],
    "connections": [{"from": "f32", "to": "mono"}, {"from": "mono", "to": "vad"}]}


def tone_bursts(seed: int, seconds: float = 3.0) -> rm.Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    voiced = (np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t) > 0.3).astype(float)
    x = 0.01 * rng.standard_normal(t.size) + 0.5 * voiced * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 660 * t)
    return rm.Audio(np.stack([x, x], axis=1).astype(np.float32), 16000)


@pytest.mark.parametrize("seed", range(4))
def test_vad_events_and_segment_times_are_identical(seed):
    x = tone_bursts(seed)
    native, python = both(VAD_CHAIN)
    a, b = native.run(x), python.run(x)
    assert a["vad.segments"] == b["vad.segments"], "segment times print the same on both runtimes"
    assert a["vad.segments"], "the bursts are found"
    for ea, eb in zip(a["vad"], b["vad"], strict=True):
        assert (ea["start"], ea["frame_ms"], ea["speech"]) == (eb["start"], eb["frame_ms"], eb["speech"])
        np.testing.assert_allclose(ea["score"], eb["score"], atol=1e-4)
    assert counts(native.metrics()) == counts(python.metrics())


class Opaque(rm.Node):
    """Emits what JSON cannot carry."""

    node_type = "ParityOpaque"

    def process(self, data):
        return object()


class Tuple(rm.Node):
    """Emits a tuple and an integer-keyed dict, which JSON turns into a list and string keys."""

    node_type = "ParityTuple"

    def process(self, data):
        return [(1, 2), {1: "a"}]


@pytest.mark.parametrize("cls, expected", [(Opaque, "error"), (Tuple, [[1, 2], {"1": "a"}])])
def test_python_node_results_cross_the_same_way(cls, expected):
    results = []
    for runtime in ("native", "python"):
        p = rm.Pipeline(runtime=runtime).add_node("n", cls)
        results.append(outcome(lambda p: p.run(rm.Audio(np.zeros(4, np.float32), 16000))["n"], p))
    assert results[0] == results[1]
    assert results[0][0] == "error" if expected == "error" else results[0] == ("ok", expected)
