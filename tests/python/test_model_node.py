"""The Model node: small models the tests build with the onnx package, run by both
runtimes over any chunking and compared with onnxruntime on the same file."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]
RATE = 16000


def save(path, nodes, inputs, outputs, initializers, opset=13):
    graph = helper.make_graph(nodes, "m", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return str(path)


def tensor(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def dense(path, window=400):
    """A classifier: MatMul, Add, Relu, MatMul, Softmax."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((window, 8)).astype(np.float32) * 0.1, rng.standard_normal(8).astype(np.float32)
    w2 = rng.standard_normal((8, 3)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["z"]),
             helper.make_node("Softmax", ["z"], ["y"], axis=-1)]
    return save(path, nodes, [tensor("x", ["batch", window])], [tensor("y", ["batch", 3])],
                {"w1": w1, "b1": b1, "w2": w2})


def convolutional(path):
    """Conv (stride, pads), Relu, ReduceMean, Reshape, Transpose, Flatten, Gemm, Tanh,
    Unsqueeze, Squeeze, Concat, Exp, ReduceMax, Sub, Div, Sigmoid: over 400 samples."""
    rng = np.random.default_rng(1)
    init = {"k": rng.standard_normal((4, 1, 5)).astype(np.float32), "kb": rng.standard_normal(4).astype(np.float32),
            "shape": np.array([1, 2, 200], np.int64), "g": rng.standard_normal((3, 400)).astype(np.float32) * 0.05,
            "gc": rng.standard_normal(3).astype(np.float32), "axes": np.array([1], np.int64),
            "two": np.array([2.0], np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "k", "kb"], ["c"], strides=[2], pads=[2, 2]),
        helper.make_node("Relu", ["c"], ["cr"]),
        helper.make_node("ReduceMean", ["cr"], ["m"], axes=[2], keepdims=0),            # [1, 4]
        helper.make_node("Reshape", ["x", "shape"], ["xr"]),                             # [1, 2, 200]
        helper.make_node("Transpose", ["xr"], ["xt"], perm=[0, 2, 1]),                   # [1, 200, 2]
        helper.make_node("Flatten", ["xt"], ["xf"], axis=1),                             # [1, 400]
        helper.make_node("Gemm", ["xf", "g", "gc"], ["gm"], transB=1, alpha=0.5, beta=2.0),  # [1, 3]
        helper.make_node("Tanh", ["gm"], ["gt"]),
        helper.make_node("Unsqueeze", ["gt", "axes"], ["gu"]),                           # [1, 1, 3]
        helper.make_node("Squeeze", ["gu", "axes"], ["gs"]),                             # [1, 3]
        helper.make_node("Exp", ["m"], ["me"]),
        helper.make_node("Concat", ["gs", "me"], ["cat"], axis=1),                       # [1, 7]
        helper.make_node("ReduceMax", ["cat"], ["mx"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["cat", "mx"], ["d"]),
        helper.make_node("Div", ["d", "two"], ["q"]),
        helper.make_node("Sigmoid", ["q"], ["y"]),
    ]
    return save(path, nodes, [tensor("x", [1, 1, 400])], [tensor("y", [1, 7])], init)


def halver(path, window=160):
    """A signal model: y = x / 2."""
    nodes = [helper.make_node("Mul", ["x", "half"], ["y"])]
    return save(path, nodes, [tensor("x", [1, window])], [tensor("y", [1, window])], {"half": np.array(0.5, np.float32)})


def reference(path, x, window, hop):
    """The per-window outputs of onnxruntime, with the node's windows and padded tail."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    info = session.get_inputs()[0]
    dims = [d if isinstance(d, int) and d > 0 else None for d in info.shape]
    from remotemedia.nodes.model import fit
    shape = fit(dims, window)
    outs, start = [], 0
    while start + window <= len(x):
        outs.append((start, session.run(None, {info.name: x[start:start + window].reshape(shape)})[0]))
        start += hop
    if start < len(x) and (not outs or len(x) > start - hop + window):  # samples no window has seen
        last = np.zeros(window, np.float32)
        last[:len(x) - start] = x[start:]
        outs.append((start, session.run(None, {info.name: last.reshape(shape)})[0]))
    return outs


def chunked(pipeline, x, sizes):
    """(key, item) of a stream fed ``x`` in chunks of ``sizes`` (the rest in one), flushed."""
    events, at = [], 0
    with pipeline.stream(capacity=4096) as s:
        for size in sizes + [len(x)]:
            if at >= len(x):
                break
            s.push(rm.Audio(x[at:at + size], RATE))
            at += size
        s.flush()
        events += s.pull(timeout=5)
    return events


def manifest(path, **params):
    return {"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": {"model_path": path, **params}}]}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"dense": dense(d / "dense.onnx"), "conv": convolutional(d / "conv.onnx"), "halver": halver(d / "halver.onnx")}


@pytest.mark.parametrize("runtime", RUNTIMES)
@settings(max_examples=10, deadline=None)
@given(which=st.sampled_from(["dense", "conv"]), hop=st.sampled_from([None, 160, 400, 555]),
       n=st.integers(0, 3000), sizes=st.lists(st.integers(1, 900), max_size=10), seed=st.integers(0, 99))
def test_outputs_match_onnxruntime_over_any_chunking(models, runtime, which, hop, n, sizes, seed):
    x = (np.random.default_rng(seed).standard_normal(n) * 0.3).astype(np.float32)
    params = {"window": 400} | ({"hop": hop} if hop else {})
    got = [v for _, v in chunked(rm.Pipeline.from_manifest(manifest(models[which], **params), runtime=runtime), x, sizes)]
    want = reference(models[which], x, 400, hop or 400)
    assert len(got) == len(want)
    for event, (start, y) in zip(got, want):
        assert event["start"] == start / RATE
        assert event["shape"] == list(y.shape)
        np.testing.assert_allclose(event["values"], y.reshape(-1), atol=1e-5)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_signal_models_emit_audio(models, runtime):
    x = np.random.default_rng(3).standard_normal(1000).astype(np.float32)
    out = rm.Pipeline.from_manifest(manifest(models["halver"], window=160, emit="audio"), runtime=runtime).run(rm.Audio(x, RATE))
    y = np.concatenate([a.samples for a in out["m"]])
    assert len(y) == 1120, "whole windows, then the tail padded to a window"
    np.testing.assert_allclose(y[:1000], x / 2, rtol=1e-6)


def unsupported(path):
    nodes = [helper.make_node("Cos", ["x"], ["y"])]
    return save(path, nodes, [tensor("x", [1, 10])], [tensor("y", [1, 10])], {})


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_models_and_params_are_manifest_errors_at_validation(models, runtime, tmp_path):
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(2048))
    cases = [
        ({"model_path": str(tmp_path / "missing.onnx"), "window": 10}, "model_path", "cannot open"),
        ({"model_path": str(tmp_path / "noise.onnx"), "window": 10}, "model_path", ""),
        ({"model_path": unsupported(tmp_path / "cos.onnx"), "window": 10, "engine": "native"}, "engine", "operators Cos"),
        ({"model_path": models["dense"], "window": 400, "input": "nope"}, "input", "no input 'nope'"),
        ({"model_path": models["dense"], "window": 400, "output": "nope"}, "output", "no output 'nope'"),
        ({"model_path": models["conv"], "window": 512}, "window", "does not take a window of 512"),
        ({"model_path": models["dense"], "window": 0}, "window", ""),
        ({"model_path": models["dense"]}, "window", ""),
    ]
    for params, where, words in cases:
        with pytest.raises(rm.ManifestError, match=words) as e:
            rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": params}]},
                                      runtime=runtime).run(rm.Audio(np.zeros(400, np.float32), RATE))
        assert e.value.path in (f"nodes[0].params.{where}", "nodes[0].params"), (params, e.value.path, str(e.value))


def test_the_runtimes_agree(models):
    if "native" not in RUNTIMES:
        pytest.skip("needs the native runtime")
    x = np.random.default_rng(9).standard_normal(5000).astype(np.float32)
    native, python = (rm.Pipeline.from_manifest(manifest(models["conv"], window=400, hop=240), runtime=r).run(rm.Audio(x, RATE))
                      for r in ("native", "python"))
    assert [e["start"] for e in native["m"]] == [e["start"] for e in python["m"]]
    np.testing.assert_allclose([e["values"] for e in native["m"]], [e["values"] for e in python["m"]], atol=1e-5)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_declared_latency_is_the_window_and_matches_the_lag(models, runtime):
    from test_latency import declared, measured_lag
    p = rm.Pipeline.from_manifest(manifest(models["dense"], window=400), runtime=runtime)
    frames, _ = declared(p, {"format": "f32", "channels": 1, "sample_rate": RATE}, "m")
    assert frames == 399
    x = np.random.default_rng(3).standard_normal((1300, 1)).astype(np.float32)
    assert measured_lag(p, x, RATE, RATE, lambda key, item: 400 if key == "m" else 0) == frames
