"""Latency: every node's declared algorithmic latency (as the plan gives it) against the
lag measured by streaming one frame at a time, the worst path to each sink, and
latency budgets that fail and pass where they should."""

import math
import time

import numpy as np
import pytest

import remotemedia as rm
from conftest import RUNTIMES
from test_vad import voiced_bursts


def declared(p: rm.Pipeline, caps: dict, node_id: str) -> tuple[int, float]:
    """The node's latency in output frames (from the plan's ms) and its output rate."""
    plan = p.plan(caps)
    node = next(n for n in plan["nodes"] if n["id"] == node_id)
    out = next(iter(node["outputs"].values()))
    rate = out["sample_rate"] if out["kind"] == "audio" else node["input"]["sample_rate"]
    return round(node["latency_ms"] * rate / 1000), rate


def measured_lag(p: rm.Pipeline, x: np.ndarray, rate: int, out_rate: int, count) -> float:
    """The most output frames by which the output trails the input when ``x`` is pushed
    one frame at a time; ``count`` turns pulled (key, item) pairs into output frames."""
    worst, pushed, emitted = 0.0, 0, 0
    with p.stream() as s:
        for frame in x:
            s.push(rm.Audio(np.ascontiguousarray(frame[None]), rate))
            pushed += 1
            emitted += sum(count(key, item) for key, item in s.pull())
            worst = max(worst, pushed * out_rate / rate - emitted)
    return worst


def audio_frames(key, item):
    return item.frames if isinstance(item, rm.Audio) else 0


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("rate, target, quality", [(48000, 16000, "high"), (16000, 48000, "balanced"),
                                                   (44100, 16000, "fast"), (8000, 11025, "high")])
def test_resample_lags_as_declared(runtime, rate, target, quality):
    p = rm.Pipeline(runtime=runtime).add_node("r", "Resample", target_rate=target, quality=quality)
    frames, out_rate = declared(p, {"format": "f32", "channels": 1, "sample_rate": rate}, "r")
    assert out_rate == target and frames > 0
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (int(frames * rate / target * 3) + 4096, 1)).astype(np.float32)
    lag = measured_lag(p, x, rate, target, audio_frames)
    assert frames - max(1.0, target / rate) <= lag <= frames, (lag, frames)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("params", [{"frame_samples": 160}, {"frame_ms": 10}, {"frame_samples": 1}])
def test_rechunk_lags_as_declared(runtime, params):
    p = rm.Pipeline(runtime=runtime).add_node("c", "Rechunk", **params)
    frames, _ = declared(p, {"format": "i16", "channels": 2, "sample_rate": 16000}, "c")
    x = np.zeros((1000, 2), np.int16)
    assert measured_lag(p, x, 16000, 16000, audio_frames) == frames


def bursts(rate: int, frame_len: int, longest: int) -> np.ndarray:
    """Voiced bursts 1 to ``longest`` frames long (frame-aligned), each after 0.6 s of
    silence: among them a run held as long as the VAD may hold one."""
    voiced = voiced_bursts(5, rate=rate, seconds=2.0, snr_db=40)[0].astype(np.float32) * 4
    loud = voiced[np.argmax(np.abs(voiced)):][: longest * frame_len]
    parts = []
    for n in range(1, longest + 1):
        parts += [np.zeros(int(0.6 * rate) // frame_len * frame_len, np.float32), loud[: n * frame_len]]
    parts.append(np.zeros(rate, np.float32))
    return np.concatenate(parts)[:, None]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("params, rate", [({}, 16000), ({"frame_ms": 10, "min_speech_ms": 50}, 8000),
                                          ({"frame_ms": 20, "min_speech_ms": 0}, 48000)])
def test_vad_decisions_lag_as_declared(runtime, params, rate):
    p = rm.Pipeline(runtime=runtime).add_node("v", "VAD", **params)
    frames, _ = declared(p, {"format": "f32", "channels": 1, "sample_rate": rate}, "v")
    frame_len = rate * params.get("frame_ms", 30) // 1000
    x = bursts(rate, frame_len, 8)

    def decided(key, item):  # input frames whose decision came out
        return len(item["speech"]) * frame_len if key == "v" else 0

    lag = measured_lag(p, x, rate, rate, decided)
    assert frames - frame_len < lag <= frames, (lag, frames)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("node_type, params", [("Gain", {}), ("FormatConverter", {"format": "i16"}),
                                               ("Downmix", {}), ("PassThrough", {})])
def test_nodes_that_emit_at_once_declare_no_latency(runtime, node_type, params):
    p = rm.Pipeline(runtime=runtime).add_node("n", node_type, **params)
    assert declared(p, {"format": "f32", "channels": 2, "sample_rate": 16000}, "n")[0] == 0
    x = np.zeros((50, 2), np.float32)
    assert measured_lag(p, x, 16000, 16000, audio_frames) == 0


# ---- paths and budgets ----------------------------------------------------------------------

def chain(**extra) -> dict:
    return {"version": "1", "input": {"format": "i16", "channels": 2, "sample_rate": 48000}, **extra,
            "nodes": [{"id": "c", "node_type": "Rechunk", "params": {"frame_ms": 20}},
                      {"id": "vad", "node_type": "VAD", "params": {"engine": "spectral"}}],
            "connections": [{"from": "c", "to": "vad"}]}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_plan_gives_the_worst_path_to_each_sink(runtime):
    plan = rm.Pipeline.from_manifest(chain(), runtime=runtime).plan()
    ms = {n["id"]: n["latency_ms"] for n in plan["nodes"]}
    assert ms["c"] == pytest.approx(19.979166, abs=1e-5) and ms["vad"] == pytest.approx(149.979166, abs=1e-5)
    assert set(plan["paths"]) == {"vad", "vad.segments", "vad.audio"}
    path = plan["paths"]["vad.segments"]
    assert [n["id"] for n in path["nodes"]] == ["c", "c→vad.to_f32", "c→vad.downmix", "vad"]
    assert path["latency_ms"] == pytest.approx(sum(ms[n["id"]] for n in path["nodes"]))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_path_over_budget_fails_validation_naming_it(runtime):
    with pytest.raises(rm.ManifestError) as e:
        rm.Pipeline.from_manifest(chain(latency_budget_ms=100), runtime=runtime)
    assert e.value.path == "latency_budget_ms"
    assert "the path input → c → c→vad.to_f32 → c→vad.downmix → vad has 170.0 ms" in str(e.value)
    assert "over the budget of 100.0 ms; the largest parts: vad 150.0 ms, c 20.0 ms" in str(e.value)
    rm.Pipeline.from_manifest(chain(latency_budget_ms=170), runtime=runtime)
    m = chain()
    m["nodes"][0]["latency_budget_ms"] = 19.5
    with pytest.raises(rm.ManifestError) as e:
        rm.Pipeline.from_manifest(m, runtime=runtime)
    assert e.value.path == "nodes[0].latency_budget_ms" and "input → c has 20.0 ms" in str(e.value)
    m["nodes"][0]["latency_budget_ms"] = 20
    assert rm.Pipeline.from_manifest(m, runtime=runtime).to_manifest()["nodes"][0]["latency_budget_ms"] == 20


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_budget_is_checked_when_the_first_chunk_sets_the_rate(runtime):
    p = rm.Pipeline(runtime=runtime, latency_budget_ms=50).add_node("r", "Resample", target_rate=16000)
    p.run(rm.Audio(np.zeros(480, np.float32), 16000))  # the same rate: nothing waits
    with pytest.raises(rm.ManifestError, match="over the budget of 50.0 ms"):
        p.run(rm.Audio(np.zeros(480, np.float32), 48000))


@pytest.mark.parametrize("bad", [0, -1, 3_600_001, math.inf])
def test_budgets_are_bounded(bad):
    for runtime in RUNTIMES:
        with pytest.raises(rm.ManifestError) as e:
            rm.Pipeline.from_manifest({"version": "1", "latency_budget_ms": bad,
                                       "nodes": [{"id": "g", "node_type": "Gain"}]}, runtime=runtime)
        assert e.value.path == "latency_budget_ms"


# ---- measured, live ----------------------------------------------------------------------------

@rm.register_node
class Slow(rm.Node):
    """Takes 2 ms per item (its latency undeclared, so a budget passes validation)."""

    node_type = "Slow"

    def process(self, data):
        time.sleep(0.002)
        return data


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_sinks_report_push_to_output_latency_and_budget_overruns(runtime):
    chunk = rm.Audio(np.zeros(320, np.float32), 16000)
    frames = rm.Pipeline(runtime=runtime).add_node("c", "Rechunk", frame_ms=100, latency_budget_ms=120)
    slow = rm.Pipeline(runtime=runtime, latency_budget_ms=1).add_node("s", Slow)
    vad = rm.Pipeline(runtime=runtime).add_node("v", "VAD")
    streams = [p.stream() for p in (frames, slow, vad)]
    for _ in range(25):
        for s in streams:
            s.push(chunk)
    pulled = []
    for s in streams:
        s.flush()
        pulled.append(s.pull())
    (c, sl, v) = (s.metrics()["sinks"] for s in streams)
    assert c["c"]["latency_ms"]["count"] == 5 and c["c"]["budget_ms"] == 120, "one per 100 ms frame"
    assert sl["s"]["latency_ms"]["count"] == 25 and sl["s"]["budget_ms"] == 1
    assert sl["s"]["budget_overruns"] == 25 and sl["s"]["latency_ms"]["p50"] >= 2.0, "each waited for the 2 ms sleep"
    assert set(v) == {"v", "v.segments", "v.audio"}
    assert v["v"]["latency_ms"]["count"] == sum(key == "v" for key, _ in pulled[2]) > 0
    assert v["v"]["budget_ms"] is None and v["v"]["budget_overruns"] == 0
    for s in streams:
        s.close()
    if runtime == "native":
        slow.run(chunk)
        text = slow.metrics("prometheus")
        assert 'remotemedia_sink_budget_overruns_total{pipeline="",sink="s"} 1' in text
        assert 'remotemedia_sink_latency_seconds{pipeline="",sink="s",quantile="0.5"}' in text
