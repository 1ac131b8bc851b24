"""The Model node on onnxruntime (issue 31): models the built-in engine cannot run,
built here with the onnx package (a GRU and an LSTM carrying state, a 2-D convolution,
an int8 QDQ MatMul with an int64 constant, a graph with an If, float16 tensors) and
silero's own full graph, against onnxruntime called window by window from Python with
the state carried by hand; bad params at validation; which engine ran; batches."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.model import silero_package_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]
RATE = 16000
SILERO = silero_package_model()


def save(path, nodes, inputs, outputs, initializers, opset=17):
    graph = helper.make_graph(nodes, "m", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def info(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def rnd(seed, *shape, scale=0.3):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def gru(path):
    """x [1, 1, 40] -> GRU(8) -> y [1, 1, 1, 8]; h carried."""
    init = {"W": rnd(1, 1, 24, 40), "R": rnd(2, 1, 24, 8), "B": rnd(3, 1, 48)}
    nodes = [helper.make_node("GRU", ["x", "W", "R", "B", "", "h"], ["y", "hn"], hidden_size=8)]
    return save(path, nodes, [info("x", [1, 1, 40]), info("h", [1, 1, 8])], [info("y", [1, 1, 1, 8]), info("hn", [1, 1, 8])], init)


def lstm(path):
    """x [1, 1, 40] -> LSTM(8) -> y; h and c carried."""
    init = {"W": rnd(4, 1, 32, 40), "R": rnd(5, 1, 32, 8), "B": rnd(6, 1, 64)}
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B", "", "h", "c"], ["y", "hn", "cn"], hidden_size=8)]
    return save(path, nodes, [info("x", [1, 1, 40]), info("h", [1, 1, 8]), info("c", [1, 1, 8])],
                [info("y", [1, 1, 1, 8]), info("hn", [1, 1, 8]), info("cn", [1, 1, 8])], init)


def conv2d(path):
    """x [batch, 1, 10, 40] -> Conv 3x3 (3 channels) -> Relu -> ReduceMean -> y [batch, 3]."""
    nodes = [helper.make_node("Conv", ["x", "k", "kb"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["y"], axes=[2, 3], keepdims=0)]
    return save(path, nodes, [info("x", ["batch", 1, 10, 40])], [info("y", ["batch", 3])],
                {"k": rnd(7, 3, 1, 3, 3), "kb": rnd(8, 3)})


def qdq(path):
    """x [batch, 64] quantized to int8 and back, MatMul with int8 weights, times an
    int64 constant input gain: y [batch, 4]."""
    w = np.random.default_rng(9).integers(-127, 127, (64, 4)).astype(np.int8)
    init = {"s": np.array(0.02, np.float32), "z": np.array(0, np.int8), "w": w, "ws": np.array(0.01, np.float32),
            "b": rnd(10, 4)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]), helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "z"], ["wd"]), helper.make_node("MatMul", ["xd", "wd"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]), helper.make_node("Cast", ["gain"], ["g"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["a", "g"], ["y"])]
    return save(path, nodes, [info("x", ["batch", 64]), info("gain", [], TensorProto.INT64)], [info("y", ["batch", 4])], init)


def branching(path):
    """y = x * 2 where max(x) > 0, else -x: a graph with an If."""
    then = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [info("t", [1, 64])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [info("e", [1, 64])])
    nodes = [helper.make_node("ReduceMax", ["x"], ["mx"], keepdims=0), helper.make_node("Greater", ["mx", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other)]
    return save(path, nodes, [info("x", [1, 64])], [info("y", [1, 64])],
                {"two": np.array(2.0, np.float32), "zero": np.array(0.0, np.float32)})


def half(path):
    """float16 in and out: y = x * 0.5 + bias."""
    nodes = [helper.make_node("Mul", ["x", "k"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    return save(path, nodes, [info("x", [1, 32], TensorProto.FLOAT16)], [info("y", [1, 32], TensorProto.FLOAT16)],
                {"k": np.array(0.5, np.float16), "b": rnd(11, 32).astype(np.float16)})


#: name -> (builder, params beyond model_path, input shape per window, input dtype)
CASES = {
    "gru": (gru, {"window": 40, "state": [["h", "hn"]], "output": ["y", "hn"]}, [1, 1, 40], np.float32),
    "lstm": (lstm, {"window": 40, "state": [["h", "hn"], ["c", "cn"]]}, [1, 1, 40], np.float32),
    "conv2d": (conv2d, {"window": 400, "hop": 160}, [1, 1, 10, 40], np.float32),
    "qdq": (qdq, {"window": 48, "context": 16, "constants": {"gain": 3}}, [1, 64], np.float32),
    "qdq_skipping": (qdq, {"window": 48, "hop": 70, "context": 16, "constants": {"gain": 2}, "batch": 4}, [1, 64], np.float32),
    "if": (branching, {"window": 64}, [1, 64], np.float32),
    "half": (half, {"window": 32}, [1, 32], np.float16),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("ort_models")
    return {name: case[0](d / f"{name}.onnx") for name, case in CASES.items()}


def manifest(path, **params):
    return {"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": {"model_path": path, **params}}]}


def reference(path, x, params, shape, dtype):
    """Per window (start, {output: array}) from onnxruntime called window by window, the
    state carried by hand: the node's windows, context and padded tail."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    window, hop, context = params["window"], params.get("hop", params["window"]), params.get("context", 0)
    state = {a: np.zeros([d if isinstance(d, int) else 1 for d in next(i for i in session.get_inputs() if i.name == a).shape],
                         np.float32) for a, _ in params.get("state", [])}
    constants = {k: np.array(v, np.int64) for k, v in params.get("constants", {}).items()}
    carried = set(state) | set(constants)
    name = next(i.name for i in session.get_inputs() if i.name not in carried)
    outs = params.get("output")
    outs = [outs] if isinstance(outs, str) else outs or [next(o.name for o in session.get_outputs()
                                                               if o.name not in {b for _, b in params.get("state", [])})]
    starts = list(range(0, len(x) - window + 1, hop))
    tail = starts[-1] + hop if starts else 0
    if tail < len(x) and (not starts or len(x) > starts[-1] + window):
        starts.append(tail)
    results = []
    for s in starts:
        before = x[max(0, s - context):s]
        w = x[s:s + window]
        t = np.concatenate([np.zeros(context - len(before), np.float32), before, w, np.zeros(window - len(w), np.float32)])
        got = session.run(outs + [b for _, b in params.get("state", [])],
                          {name: t.reshape(shape).astype(dtype), **state, **constants})
        state = {a: v for (a, _), v in zip(params.get("state", []), got[len(outs):])}
        results.append((s, dict(zip(outs, got[:len(outs)]))))
    return results


def by_port(out, ports):
    """{output name: [event, ...]} from a run's result dict."""
    return {name: out["m" if i == 0 else f"m.{name}"] for i, name in enumerate(ports)}


def check(got, want, ports):
    for name in ports:
        events = got[name]
        assert len(events) == len(want), (name, len(events), len(want))
        for e, (start, ys) in zip(events, want):
            assert e["start"] == start / RATE
            assert e["shape"] == list(ys[name].shape)
            np.testing.assert_allclose(np.array(e["values"], np.float64), ys[name].reshape(-1).astype(np.float64),
                                       atol=1e-5 if ys[name].dtype != np.float16 else 2e-3)


def ports_of(name):
    out = CASES[name][1].get("output")
    return [out] if isinstance(out, str) else out or [None]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", list(CASES))
def test_one_shot_runs_match_onnxruntime_window_by_window(models, runtime, name):
    _, params, shape, dtype = CASES[name]
    x = rnd(20, 1500)
    out = rm.Pipeline.from_manifest(manifest(models[name], **params), runtime=runtime).run(rm.Audio(x, RATE))
    want = reference(models[name], x, params, shape, dtype)
    ports = ports_of(name) if ports_of(name) != [None] else list(want[0][1])
    check(by_port(out, ports), want, ports)


@pytest.mark.parametrize("runtime", RUNTIMES)
@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(list(CASES)), n=st.integers(0, 1200), sizes=st.lists(st.integers(1, 700), max_size=8),
       seed=st.integers(0, 99))
def test_streams_in_any_chunking_match_onnxruntime(models, runtime, name, n, sizes, seed):
    _, params, shape, dtype = CASES[name]
    x = rnd(seed, n)
    from test_model_node import chunked
    events = chunked(rm.Pipeline.from_manifest(manifest(models[name], **params), runtime=runtime), x, sizes)
    want = reference(models[name], x, params, shape, dtype)
    ports = ports_of(name) if ports_of(name) != [None] else (list(want[0][1]) if want else [])
    got = {name_: [v for k, v in events if k == ("m" if i == 0 else f"m.{name_}")] for i, name_ in enumerate(ports)}
    check(got, want, ports)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_state_starts_from_zero_in_every_stream(models, runtime):
    _, params, shape, dtype = CASES["lstm"]
    x = rnd(30, 400)
    p = rm.Pipeline.from_manifest(manifest(models["lstm"], **params), runtime=runtime)
    first, again = p.run(rm.Audio(x, RATE)), p.run(rm.Audio(x, RATE))
    assert [e["values"] for e in first["m"]] == [e["values"] for e in again["m"]]
    with p.stream() as s:
        s.push(rm.Audio(x, RATE))
        s.flush()
        streamed = [v for _, v in s.pull(timeout=5)]
    assert [e["values"] for e in streamed] == [e["values"] for e in first["m"]]


@pytest.mark.skipif(SILERO is None, reason="needs the silero-vad package's model files")
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_silero_full_graph_matches_the_native_silero_engine(runtime):
    import os
    full = os.path.join(os.path.dirname(SILERO), "silero_vad.onnx")
    from test_silero import spoken
    x = spoken(3, 4.0)
    model = rm.Pipeline.from_manifest(manifest(full, window=512, context=64, state=[["state", "stateN"]], constants={"sr": 16000},
                                               engine="onnxruntime"), runtime=runtime).run(rm.Audio(x, RATE))
    vad = rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "v", "node_type": "VAD", "params": {"engine": "silero"}}]},
                                    runtime="native" if "native" in RUNTIMES else "python").run(rm.Audio(x, RATE))
    scores = [s for e in vad["v"] for s in e["score"]]
    probs = [e["values"][0] for e in model["m"]]
    assert len(probs) == len(scores) == -(-len(x) // 512), "a window per 512 samples, the tail padded"
    np.testing.assert_allclose(probs[:len(scores)], scores, atol=1e-4)
    assert max(scores) > 0.5 > min(scores), "the clip holds speech and pauses"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stateless_batches_equal_window_by_window(models, runtime):
    _, params, _, _ = CASES["conv2d"]
    x = rnd(50, 20000)
    runs = [rm.Pipeline.from_manifest(manifest(models["conv2d"], **params, batch=b), runtime=runtime).run(rm.Audio(x, RATE))
            for b in (1, 7, 32)]
    for other in runs[1:]:
        assert [e["start"] for e in other["m"]] == [e["start"] for e in runs[0]["m"]]
        np.testing.assert_allclose([e["values"] for e in other["m"]], [e["values"] for e in runs[0]["m"]], atol=1e-6)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_engine_auto_picks_the_built_in_engine_only_where_it_runs_every_operator(models, runtime, tmp_path, caplog):
    dense = save(tmp_path / "dense.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [info("x", [1, 40])], [info("y", [1, 2])],
                 {"w": rnd(60, 40, 2)})
    engines = {}
    for name, path in [("dense", dense), ("if", models["if"])]:
        with caplog.at_level(logging.INFO, logger="remotemedia"):
            caplog.clear()
            rm.Pipeline.from_manifest(manifest(path, window=40 if name == "dense" else 64), runtime=runtime)
            engines[name] = [r.getMessage() for r in caplog.records if "runs on the" in r.getMessage()]
    # the Python runtime runs every graph on the onnxruntime package
    assert any(("native" if runtime == "native" else "onnxruntime") + " engine" in m for m in engines["dense"]), engines
    assert any("onnxruntime engine" in m for m in engines["if"]), engines


def bad(tmp_path, models):
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    lstm, qdq = models["lstm"], models["qdq"]
    return [
        ({"model_path": str(tmp_path / "noise.onnx"), "window": 40, "engine": "onnxruntime"}, "model_path", "not a usable ONNX"),
        ({"model_path": models["if"], "window": 64, "engine": "native"}, "engine", "operators Greater, If "),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"]]}, "constants", "input 'c' is not fed"),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"], ["c", "nope"]]}, "state[1]", "no output 'nope'"),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"], ["c", "y"]]}, "state[1]", "differ"),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"], ["c", "cn"]], "output": ["y", "zz"]}, "output", "no output 'zz'"),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"], ["c", "cn"]], "input": "q"}, "input", "no input 'q'"),
        ({"model_path": qdq, "window": 64, "constants": {"gain": 0.5}}, "constants.gain", "int64"),
        ({"model_path": qdq, "window": 64, "constants": {"gain": "x"}}, "constants.gain", "not a number"),
        ({"model_path": qdq, "window": 64, "constants": {"gain": 1, "other": 2}}, "constants.other", "no input 'other'"),
        ({"model_path": qdq, "window": 64}, "constants", "input 'gain' is not fed"),
        ({"model_path": qdq, "window": 50, "constants": {"gain": 1}}, "window", "does not take a window of 50"),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"], ["c", "cn"]], "engine": "native"}, "engine", "state"),
        ({"model_path": lstm, "window": 40, "engine": "gpu"}, "engine", ""),
        ({"model_path": lstm, "window": 40, "state": [["h", "hn"], ["c", "cn"]], "output": ["y", "y"]}, "output", "listed twice"),
        ({"model_path": lstm, "window": 40, "batch": 0}, "batch", ""),
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_params_are_manifest_errors_at_their_path_at_validation(models, runtime, tmp_path):
    for params, where, words in bad(tmp_path, models):
        with pytest.raises(rm.ManifestError, match=words or None) as e:
            rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": params}]}, runtime=runtime)
        assert e.value.path == f"nodes[0].params.{where}", (params, e.value.path, str(e.value))


def test_the_runtimes_give_the_same_messages(models, tmp_path):
    if "native" not in RUNTIMES:
        pytest.skip("needs the native runtime")
    for params, _, _ in bad(tmp_path, models):
        messages = []
        for runtime in ("native", "python"):
            with pytest.raises(rm.ManifestError) as e:
                rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": params}]},
                                          runtime=runtime)
            messages.append((e.value.path, str(e.value).split(": onnxruntime says:")[0]))
        assert messages[0] == messages[1], params


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_streams_on_many_threads_share_one_session(models, runtime):
    from concurrent.futures import ThreadPoolExecutor
    _, params, shape, dtype = CASES["gru"]
    p = rm.Pipeline.from_manifest(manifest(models["gru"], **params), runtime=runtime)
    xs = [rnd(70 + i, 800) for i in range(6)]

    def one(x):
        with p.stream() as s:
            for k in range(0, len(x), 120):
                s.push(rm.Audio(x[k:k + 120], RATE))
            s.flush()
            return [v["values"] for key, v in s.pull(timeout=5) if key == "m"]

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(one, xs))
    for x, values in zip(xs, got):
        want = reference(models["gru"], x, params, shape, dtype)
        np.testing.assert_allclose(values, [ys["y"].reshape(-1) for _, ys in want], atol=1e-5)


def test_the_inference_thread_budget_is_one_setting_for_the_process():
    before = rm.inference_threads()
    try:
        rm.set_inference_threads(3)
        assert rm.inference_threads() == 3
        for wrong in (0, -1, 5000, 2.5, "4"):
            with pytest.raises(rm.InvalidInputError):
                rm.set_inference_threads(wrong)
        assert rm.inference_threads() == 3
    finally:
        rm.set_inference_threads(before)


FAKE_ORT = r"""
typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;
static const void *get_api(unsigned version) { (void)version; return 0; }
static const char *version_string(void) { return "1.10.0"; }
static const OrtApiBase base = { get_api, version_string };
const OrtApiBase *OrtGetApiBase(void) { return &base; }
"""

WITHOUT = r"""
import sys, numpy as np
sys.modules["onnxruntime"] = None  # the Python package hidden too
import remotemedia as rm
runtime, needs, builtin = sys.argv[1:4]
def node(path, **p):
    return {"version": "1", "nodes": [{"id": "m", "node_type": "Model", "params": {"model_path": path, **p}}]}
try:
    rm.Pipeline.from_manifest(node(needs, window=64), runtime=runtime)
    print("LOADED")
except rm.ManifestError as e:
    print("ERROR", e.path, str(e))
try:
    out = rm.Pipeline.from_manifest(node(builtin, window=40), runtime=runtime).run(rm.Audio(np.ones(80, np.float32), 16000))
    print("BUILT-IN RUNS", len(out["m"]))
except rm.ManifestError as e:
    print("BUILT-IN ERROR", e.path, str(e))
vad = rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "v", "node_type": "VAD", "params": {}},
                                                           {"id": "g", "node_type": "Gain", "params": {"gain_db": -6}}],
                                 "connections": [{"from": "v.audio", "to": "g"}]}, runtime=runtime)
print("OTHERS RUN", len(vad.run(rm.Audio(np.zeros(4800, np.float32), 16000))["v"]))
"""


def without_onnxruntime(runtime, library, models, tmp_path):
    """What a process whose onnxruntime is ``library`` (a path) says, the Python package hidden."""
    import os
    import subprocess
    import sys
    dense = save(tmp_path / "dense.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [info("x", [1, 40])], [info("y", [1, 2])],
                 {"w": rnd(61, 40, 2)})
    env = {**os.environ, "REMOTEMEDIA_ONNXRUNTIME": str(library)}
    run = subprocess.run([sys.executable, "-c", WITHOUT, runtime, models["if"], dense], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_without_onnxruntime_its_models_are_manifest_errors_and_every_other_node_runs(models, runtime, tmp_path):
    said = without_onnxruntime(runtime, tmp_path / "missing" / "libonnxruntime.so", models, tmp_path)
    assert "ERROR nodes[0].params.engine" in said and "install onnxruntime 1.17 or newer" in said, said
    if runtime == "native":
        assert "operators Greater, If" in said and "BUILT-IN RUNS 2" in said, said
    else:  # the Python runtime runs every graph on the onnxruntime package
        assert "BUILT-IN ERROR nodes[0].params.engine" in said, said
    assert "OTHERS RUN" in said, said


def test_an_onnxruntime_too_old_is_refused_with_the_version_it_needs(models, tmp_path):
    if "native" not in RUNTIMES:
        pytest.skip("the native engine loads the library")
    import shutil
    import subprocess
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build a stand-in library")
    (tmp_path / "fake.c").write_text(FAKE_ORT)
    library = tmp_path / "libonnxruntime.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(tmp_path / "fake.c")], check=True)
    said = without_onnxruntime("native", library, models, tmp_path)
    assert "ERROR nodes[0].params.engine" in said and "1.10.0" in said and "1.17" in said, said
    assert "BUILT-IN RUNS 2" in said and "OTHERS RUN" in said, said


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * __import__("os").sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_many_streams_share_one_session_and_hold_only_their_state(models, runtime):
    _, params, _, _ = CASES["lstm"]
    p = rm.Pipeline.from_manifest(manifest(models["lstm"], **params), runtime=runtime)
    chunk = rm.Audio(rnd(80, 40), RATE)
    opened = []
    for k in range(201):
        s = p.stream()
        s.push(chunk)
        assert len(s.pull(timeout=5)) == 1
        opened.append(s)
        if k == 0:
            first = rss_bytes()
    added = rss_bytes() - first
    for s in opened:
        s.close()
    assert added < 5 << 20, f"200 streams added {added / 2**20:.1f} MB"


def test_an_isolated_model_loads_the_same_onnxruntime_in_its_process(models):
    if "native" not in RUNTIMES:
        pytest.skip("process isolation of native nodes")
    _, params, shape, dtype = CASES["gru"]
    m = manifest(models["gru"], **params)
    m["nodes"][0]["isolation"] = "process"
    x = rnd(90, 400)
    out = rm.Pipeline.from_manifest(m, runtime="native").run(rm.Audio(x, RATE))
    want = reference(models["gru"], x, params, shape, dtype)
    np.testing.assert_allclose([e["values"] for e in out["m"]], [ys["y"].reshape(-1) for _, ys in want], atol=1e-5)
    assert len(out["m.hn"]) == len(want), "both output ports cross the process boundary"
