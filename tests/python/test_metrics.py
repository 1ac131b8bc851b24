"""Metrics: real output of both runtimes against docs/metrics.schema.json, and values."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import remotemedia as rm

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "metrics.schema.json").read_text())


def pipeline(runtime):
    return (rm.Pipeline("metrics-test", runtime=runtime)
            .add_node("f32", "FormatConverter", format="f32")
            .add_node("rs", "Resample", target_rate=16000)
            .add_node("vad", "VAD")
            .connect("f32", "rs").connect("rs", "vad"))


def test_run_metrics_match_the_schema_and_count_right(runtime):
    p = pipeline(runtime)
    audio = rm.Audio(np.zeros(48000, np.int16), 48000)
    for _ in range(2):
        p.run(audio)
    m = p.metrics()
    jsonschema.validate(m, SCHEMA)
    assert m["pipeline"]["name"] == "metrics-test"
    assert m["pipeline"]["runs"] == 2 and m["pipeline"]["pushes"] == 0
    assert m["pipeline"]["audio_seconds"] == pytest.approx(2.0)
    assert 0 < m["pipeline"]["real_time_factor"] < 1
    nodes = {n["id"]: n for n in m["nodes"]}
    assert all(n["runtime"] == runtime for n in nodes.values())
    conv = nodes["f32"]
    assert conv["calls"] == 4 and conv["errors"] == 0, "two runs: a process and a flush each"
    assert conv["items_in"] == 2 and conv["samples_in"] == 96000 and conv["bytes_in"] == 192000
    assert conv["samples_out"] == 96000 and conv["bytes_out"] == 384000
    assert nodes["rs"]["samples_out"] == 32000
    memory = conv["memory"]
    if runtime == "native":
        # Two runs converted 48000 samples each into fresh (then pooled) f32 buffers.
        assert memory["measured"] and memory["allocations"] > 0
        assert memory["allocated_bytes"] >= 192000 and memory["large_allocations"] >= 1
    else:
        assert not memory["measured"]
    t = conv["time_us"]
    assert t["count"] == 4 and 0 < t["min"] <= t["p50"] <= t["p99"] <= t["max"]
    assert t["total"] == pytest.approx(t["mean"] * 4, rel=1e-3)


def test_errors_are_counted(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("rs", "Fault", mode="permanent", fail_first=1)
    with pytest.raises(rm.NodeError):
        p.run(rm.Audio(np.zeros(100, np.int16), 48000))
    node = p.metrics()["nodes"][0]
    assert node["errors"] == 1 and node["calls"] == 1 and node["items_out"] == 0


def test_session_metrics_are_readable_while_streaming(runtime):
    p = pipeline(runtime)
    with p.stream(capacity=4, overflow="drop_oldest") as s:
        for _ in range(10):
            s.push(rm.Audio(np.zeros(960, np.int16), 48000))
        m = s.metrics()
    jsonschema.validate(m, SCHEMA)
    assert m["pipeline"]["pushes"] == 10
    assert m["session"]["chunks_in"] == 10 and m["session"]["queue_depth"] <= 4
    assert m["session"]["dropped"] == m["session"]["items_out"] - m["session"]["queue_depth"]
    assert p.metrics()["pipeline"]["pushes"] == 0, "a stream has its own counters"


@pytest.mark.skipif(not rm.native_available(), reason="Prometheus text is formatted natively")
def test_prometheus_text(runtime):
    p = pipeline(runtime)
    p.run(rm.Audio(np.zeros(4800, np.int16), 48000))
    text = p.metrics("prometheus")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert 'remotemedia_node_calls_total{pipeline="metrics-test",node="rs",node_type="Resample",' in text
    assert all(len(line.rsplit(" ", 1)) == 2 and float(line.rsplit(" ", 1)[1]) >= 0 for line in lines)
    assert "# TYPE remotemedia_node_call_seconds summary" in text
