"""Property tests: random manifests and DAGs behave the same on both runtimes."""

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="compares against the native runtime")

DTYPES = [np.float32, np.int16, np.int32, np.float64]


@st.composite
def dags(draw, max_nodes=7):
    n = draw(st.integers(1, max_nodes))
    ids = draw(st.permutations([f"n{i}" for i in range(n)]))
    nodes = []
    for node_id in ids:
        kind = draw(st.sampled_from(["Gain", "PassThrough"]))
        node = {"id": node_id, "node_type": kind, "params": {}, "runtime_hint": draw(st.sampled_from(["auto", "python"]))}
        if kind == "Gain":
            node["params"]["gain_db"] = draw(st.floats(-60, 60, allow_nan=False).map(lambda v: round(v, 3)))
        nodes.append(node)
    connections = [{"from": ids[i], "to": ids[j]} for i in range(n) for j in range(i + 1, n) if draw(st.booleans())]
    draw(st.randoms()).shuffle(nodes)
    return {"version": "1", "metadata": {}, "nodes": nodes, "connections": connections}


@st.composite
def audio(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    channels = draw(st.integers(1, 3))
    frames = draw(st.integers(0, 64))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        x = rng.uniform(-2, 2, (frames, channels)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (frames, channels), endpoint=True, dtype=dtype)
    return rm.Audio(x if channels > 1 else x.reshape(-1), draw(st.sampled_from([8000, 16000, 48000])))


def assert_same_outputs(a: dict, b: dict):
    assert list(a) == list(b)
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for x, y in zip(a[key], b[key]):
            assert x.sample_rate == y.sample_rate and x.samples.dtype == y.samples.dtype
            assert x.samples.shape == y.samples.shape
            np.testing.assert_array_equal(x.samples, y.samples)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest=dags(), data=audio())
def test_random_dags_give_identical_results_on_both_runtimes(manifest, data):
    native = rm.Pipeline.from_manifest(manifest, runtime="native")
    python = rm.Pipeline.from_manifest(manifest, runtime="python")
    assert native.runtime == "native" and python.runtime == "python"
    hints = {n["id"]: "python" if n["runtime_hint"] == "python" else "native" for n in manifest["nodes"]}
    assert native.node_runtimes() == hints
    assert_same_outputs(native.run(data), python.run(data))


@settings(max_examples=100, deadline=None)
@given(manifest=dags(), pick=st.data())
def test_cycles_are_reported_identically(manifest, pick):
    ids = [n["id"] for n in manifest["nodes"]]
    a = pick.draw(st.sampled_from(ids))
    b = pick.draw(st.sampled_from(ids))
    m = copy.deepcopy(manifest)
    m["connections"] = [c for c in m["connections"] if (c["from"], c["to"]) not in {(a, b), (b, a)}]
    m["connections"] += [{"from": a, "to": b}] + ([{"from": b, "to": a}] if a != b else [])
    errors = []
    for runtime in ("native", "python"):
        with pytest.raises(rm.CycleError) as info:
            rm.Pipeline.from_manifest(m, runtime=runtime)
        errors.append(info.value.nodes)
    assert errors[0] == errors[1]
    cycle = errors[0]
    assert cycle[0] == cycle[-1]
    edges = {(c["from"], c["to"]) for c in m["connections"]}
    assert all((x, y) in edges for x, y in zip(cycle, cycle[1:])), "the reported cycle is made of real edges"


MUTATIONS = {
    "unknown top-level field": lambda m, r: m.update(extra=1),
    "unknown node field": lambda m, r: m["nodes"][r.randrange(len(m["nodes"]))].update(colour="red"),
    "duplicate id": lambda m, r: m["nodes"].append(dict(m["nodes"][r.randrange(len(m["nodes"]))])),
    "dangling to": lambda m, r: m["connections"].append({"from": m["nodes"][0]["id"], "to": "ghost"}),
    "dangling from": lambda m, r: m["connections"].append({"from": "ghost.out", "to": m["nodes"][0]["id"]}),
    "bad version": lambda m, r: m.update(version=r.choice(["0", "2", "1.0", ""])),
    "bad hint": lambda m, r: m["nodes"][0].update(runtime_hint=r.choice(["gpu", "Native", ""])),
    "bad id": lambda m, r: m["nodes"][0].update(id=r.choice(["", "a b", "a.b", "x" * 65, "é"])),
    "unknown type": lambda m, r: m["nodes"][0].update(node_type="NoSuchNode"),
    "bad param": lambda m, r: m["nodes"][0].update(node_type="Gain", params={"gain_db": r.choice([500, "x", None])}),
    "unknown param": lambda m, r: m["nodes"][0].update(node_type="Gain", params={"gain": 1}),
    "params not object": lambda m, r: m["nodes"][0].update(params=[1]),
    "no nodes": lambda m, r: m.update(nodes=[], connections=[]),
    "missing node_type": lambda m, r: m["nodes"][0].pop("node_type"),
}


@settings(max_examples=200, deadline=None)
@given(manifest=dags(), mutation=st.sampled_from(sorted(MUTATIONS)), rnd=st.randoms())
def test_invalid_manifests_fail_the_same_way_on_both_runtimes(manifest, mutation, rnd):
    m = copy.deepcopy(manifest)
    MUTATIONS[mutation](m, rnd)
    raised = []
    for runtime in ("native", "python"):
        with pytest.raises(rm.RemoteMediaError) as info:
            rm.Pipeline.from_manifest(json.loads(json.dumps(m)), runtime=runtime)
        raised.append(info.value)
    native, python = raised
    assert type(native) is type(python), (mutation, native, python)
    if isinstance(native, rm.ManifestError):
        assert native.path == python.path, (mutation, str(native), str(python))
    assert str(native) == str(python), "the same message on both runtimes"


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_failed_builds_do_not_leak():
    pad = "x" * 20_000
    bad = {"version": "1", "metadata": {"pad": pad},
           "nodes": [{"id": "a", "node_type": "Gain", "params": {"gain_db": 999}}]}
    good = {"version": "1", "metadata": {"pad": pad}, "nodes": [{"id": "a", "node_type": "Gain"}]}
    x = rm.Audio(np.zeros(4800, np.float32), 48000)

    def churn(n):
        for _ in range(n):
            with pytest.raises(rm.ManifestError):
                rm.Pipeline.from_manifest(bad, runtime="native")
            rm.Pipeline.from_manifest(good, runtime="native").run(x)

    churn(300)
    before = resident_bytes()
    churn(3000)  # a leaked manifest or output per iteration would be > 60 MB
    growth = resident_bytes() - before
    assert growth < 16 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB"
