"""Memory budgets and refused input: the same clean error on both runtimes, and the
stream goes on (native/src/budget.rs, docs/ARCHITECTURE.md "Memory budgets")."""

from __future__ import annotations

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import _contract, executor
from remotemedia.node import Node


def dense(n: int) -> dict:
    """Every node feeds every later one: node k gets 2**(k-1) copies of each input item."""
    return {"version": "1", "nodes": [{"id": f"n{i}", "node_type": "PassThrough"} for i in range(n)],
            "connections": [{"from": f"n{a}", "to": f"n{b}"} for a in range(n) for b in range(a + 1, n)]}


def one(node_type: str, **params) -> rm.Pipeline:
    return rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "n", "node_type": node_type, "params": params}]})


def test_a_dense_dag_over_the_paths_budget_is_a_manifest_error(runtime):
    out = rm.Pipeline.from_manifest(dense(14), runtime=runtime).run(rm.Audio(np.zeros(480, np.float32), 16000))
    assert len(out["n13"]) == _contract.MAX_PATHS
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline.from_manifest(dense(15), runtime=runtime).run(rm.Audio(np.zeros(4, np.float32), 16000))
    assert info.value.path == "nodes[14]"
    assert "node 'n14' would get 8192 copies of each input item" in str(info.value)


def test_a_rechunk_frame_over_the_sample_budget_is_refused_and_the_pipeline_goes_on(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("n", "Rechunk", frame_samples=10_000_000)
    with pytest.raises(rm.InvalidInputError) as info:
        p.run(rm.Audio(np.zeros((1, 1000), np.float32), 16000))
    # the frame is sized when the node is configured for the stream, before its first chunk
    assert (info.value.node_id, info.value.operation) == ("n", "configure")
    assert str(info.value) == ("node 'n' failed in configure: Rechunk frame of 10000000 frames x 1000 channels is over "
                               f"the budget of {_contract.MAX_BUFFER_SAMPLES} samples")
    assert [a.frames for a in p.run(rm.Audio(np.ones(10, np.float32), 16000))["n"]] == [10_000_000]


def test_resample_state_over_the_budget_is_refused(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("n", "Resample", target_rate=16000)
    with pytest.raises(rm.InvalidInputError, match="Resample state of 8192 frames x 65535 channels") as info:
        p.run(rm.Audio(np.zeros((1, 65_535), np.float32), 48000))
    assert info.value.node_id == "n"


@pytest.fixture
def small_item_budget(runtime, monkeypatch):
    """The item budget the runtime under test enforces: the real one natively, a small
    one on the Python runtime (whose twins would take minutes to make millions of items)."""
    if runtime == "python":
        monkeypatch.setattr(executor, "MAX_ITEMS_PER_STEP", 1000)
        return 1000
    return _contract.MAX_ITEMS_PER_STEP


def test_emitting_past_the_item_budget_fails_the_call(runtime, small_item_budget):
    p = rm.Pipeline(runtime=runtime).add_node("n", "Rechunk", frame_samples=1)
    with pytest.raises(rm.InvalidInputError) as info:
        p.run(rm.Audio(np.zeros(small_item_budget + 1, np.float32), 16000))
    assert str(info.value) == (f"node 'n' failed in process: emitted more than {small_item_budget} items in one step "
                               "(the item budget)")
    node = p.metrics()["nodes"][0]
    assert (node["calls"], node["errors"]) == (1, 1), "the refused process call"
    assert len(p.run(rm.Audio(np.zeros(3, np.float32), 16000))["n"]) == 3


def test_fan_out_past_the_item_budget_names_the_emitting_node(runtime, small_item_budget):
    p = (rm.Pipeline(runtime=runtime).add_node("r", "Rechunk", frame_samples=1)
         .add_node("a", "PassThrough").add_node("b", "PassThrough").connect("r", "a").connect("r", "b"))
    with pytest.raises(rm.InvalidInputError) as info:
        p.run(rm.Audio(np.zeros(small_item_budget // 2 + 1, np.float32), 16000))
    assert info.value.node_id == "r"
    assert "its outputs would queue more than" in str(info.value)


def tone(n: int, rate: int, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + n) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("node_type,params", [("Resample", {"target_rate": 8000}), ("VAD", {})])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused_without_a_trace(runtime, node_type, params, bad):
    """The refused chunk changes nothing: the stream's outputs are those of the same
    stream without it, and the breaker (one failure opens it) is not tripped."""
    manifest = {"version": "1", "nodes": [{"id": "n", "node_type": node_type, "params": params,
                                           "circuit_breaker": {"failures": 1}}]}

    def outputs(with_bad: bool):
        p = rm.Pipeline.from_manifest(manifest, runtime=runtime)
        with p.stream() as s:
            for k in range(4):
                s.push(rm.Audio(tone(4800, 16000, 4800 * k), 16000))
                if with_bad and k == 1:
                    x = tone(4800, 16000)
                    x[4321] = bad
                    with pytest.raises(rm.InvalidInputError) as info:
                        s.push(rm.Audio(x, 16000))
                    assert info.value.node_id == "n"
                    assert "refuses non-finite samples (NaN or infinity; the first is sample 4321)" in str(info.value)
            s.flush()
            return s.pull(), s.metrics()["nodes"][0]

    clean, clean_metrics = outputs(False)
    refused, metrics = outputs(True)
    assert metrics["errors"] == 1 and metrics["breaker"] == "closed"
    assert [k for k, _ in refused] == [k for k, _ in clean]
    for (_, a), (_, b) in zip(refused, clean):
        if isinstance(a, rm.Audio):
            np.testing.assert_array_equal(a.samples, b.samples)
        else:
            assert a == b


class Picky(Node):
    """Refuses chunks that contain a negative sample."""

    node_type = "Picky"

    def process(self, data):
        if (data.samples < 0).any():
            raise rm.InvalidInputError("no negative samples, please")
        return data


def test_a_python_node_refusing_its_input_is_an_invalid_input_error_on_both_runtimes(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("n", Picky, runtime_hint="python", circuit_breaker={"failures": 1})
    with pytest.raises(rm.InvalidInputError, match="no negative samples") as info:
        p.run(rm.Audio(-np.ones(4, np.float32), 16000))
    assert (info.value.node_id, info.value.operation) == ("n", "process")
    assert len(p.run(rm.Audio(np.ones(4, np.float32), 16000))["n"]) == 1, "the breaker did not count the refusal"


@pytest.mark.parametrize("node_type,params", [("PassThrough", {}), ("Gain", {"gain_db": 6.0}), ("Downmix", {}),
                                              ("Rechunk", {"frame_samples": 4}), ("FormatConverter", {"format": "f64"})])
def test_other_nodes_carry_non_finite_samples_through(runtime, node_type, params):
    x = np.array([[np.nan, np.nan], [np.inf, np.inf], [-np.inf, -np.inf], [0.5, 0.5]], np.float32)
    p = rm.Pipeline(runtime=runtime).add_node("n", node_type, **params)
    (out,) = p.run(rm.Audio(x, 16000))["n"]
    y = out.samples.reshape(4, -1)[:, 0]
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == -np.inf and np.isfinite(y[3])


def test_conversion_to_integers_maps_nan_to_zero_and_infinities_to_full_scale(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("n", "FormatConverter", format="i16")
    (out,) = p.run(rm.Audio(np.array([np.nan, np.inf, -np.inf, 0.5], np.float32), 16000))["n"]
    assert out.samples.tolist() == [0, 32767, -32768, 16384]
