"""The order of outputs across sinks within one push or flush, as documented in the
docs/PYTHON.md ("Order of outputs"): by wave (a node's depth: one more than its deepest
predecessor's), then by the node's position in the manifest, then in emission order.
Checked on random graphs against that rule, on both runtimes."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm

KINDS = [("PassThrough", {}), ("Gain", {"gain_db": -1.0}), ("Rechunk", {"frame_samples": 50, "tail": "emit"})]


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 7))
    nodes = [{"id": f"n{i}", "node_type": t, "params": p}
             for i, (t, p) in enumerate(draw(st.lists(st.sampled_from(KINDS), min_size=n, max_size=n)))]
    edges = sorted({(a, b) for b in range(1, n) for a in draw(st.sets(st.integers(0, b - 1), max_size=2))})
    # Shuffle the manifest positions so that position and depth disagree.
    order = draw(st.permutations(range(n)))
    nodes = [nodes[i] for i in order]
    return {"version": "1", "nodes": nodes,
            "connections": [{"from": f"n{a}", "to": f"n{b}"} for a, b in edges]}, edges


def expected_keys(manifest, edges, counts: dict[str, int]) -> list[str]:
    """The documented order, from the number of items each sink emitted."""
    position = {node["id"]: i for i, node in enumerate(manifest["nodes"])}
    depth: dict[int, int] = {}
    for b in range(len(position)):
        depth[b] = max((depth[a] + 1 for a, bb in edges if bb == b), default=0)
    sinks = sorted(counts, key=lambda key: (depth[int(key[1:])], position[key]))
    return [key for key in sinks for _ in range(counts[key])]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=graphs(), frames=st.integers(1, 400))
@pytest.mark.parametrize("runtime", ["native", "python"])
def test_outputs_come_in_the_documented_order(runtime, graph, frames):
    if runtime == "native" and not rm.native_available():
        pytest.skip("no native library")
    manifest, edges = graph
    audio = rm.Audio(np.linspace(-0.5, 0.5, frames, dtype=np.float32), 16000)
    with rm.Pipeline.from_manifest(manifest, runtime=runtime).stream() as s:
        for step in (lambda: s.push(audio), s.flush):
            step()
            keys = [k for k, _ in s.pull()]
            counts = {k: len(list(g)) for k, g in itertools.groupby(sorted(keys))}
            assert keys == expected_keys(manifest, edges, counts)
