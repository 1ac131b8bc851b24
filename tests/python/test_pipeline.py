import gc
import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.node import registered


def gain_chain(runtime="auto", gain_db=6.0):
    return (rm.Pipeline("t", runtime=runtime)
            .add_node("g", "Gain", gain_db=gain_db)
            .add_node("out", "PassThrough")
            .connect("g", "out"))


def test_native_library_is_loaded():
    # CI builds the library; a silent fallback to Python would hide a broken build.
    assert rm.native_available()
    assert gain_chain().runtime == "native"
    assert gain_chain().node_runtimes() == {"g": "native", "out": "native"}


def test_runtime_reports_what_ran(runtime):
    p = gain_chain(runtime)
    assert p.runtime == runtime
    assert set(p.node_runtimes().values()) == {runtime}


def test_disable_native_env_falls_back(monkeypatch):
    monkeypatch.setenv("REMOTEMEDIA_DISABLE_NATIVE", "1")
    assert not rm.native_available()
    assert gain_chain().runtime == "python"
    with pytest.raises(rm.InvalidInputError, match="native library is not available"):
        _ = gain_chain("native").runtime


def test_gain_values(runtime):
    x = np.array([100, -100, 20000, -20000], np.int16)
    out = gain_chain(runtime, 6.020599913279624).run(rm.Audio(x, 8000))
    assert list(out) == ["out"]
    y = out["out"][0]
    assert y.sample_rate == 8000 and y.samples.dtype == np.int16
    assert y.samples.tolist() == [200, -200, 32767, -32768]


def test_stereo_shape_is_kept(runtime):
    x = np.arange(12, dtype=np.float32).reshape(6, 2) / 12
    y = gain_chain(runtime, 0.0).run(rm.Audio(x, 48000))["out"][0]
    assert y.samples.shape == (6, 2) and y.channels == 2
    np.testing.assert_array_equal(y.samples, x)


def test_manifest_round_trip_keeps_every_param(tmp_path):
    p = gain_chain(gain_db=-3.5)
    p.add_node("py", "Gain", runtime_hint="python", gain_db=1.25).connect("out", "py")
    m = p.to_manifest()
    assert m["nodes"][0]["params"] == {"gain_db": -3.5}
    assert m["nodes"][2] == {"id": "py", "node_type": "Gain", "params": {"gain_db": 1.25}, "runtime_hint": "python"}
    for source in (m, json.dumps(m), tmp_path / "m.json"):
        if not isinstance(source, (dict, str)):
            source.write_text(json.dumps(m))
        again = rm.Pipeline.from_manifest(source)
        assert again.to_manifest() == m
    assert rm.Pipeline.from_manifest(m).node_runtimes() == {"g": "native", "out": "native", "py": "python"}


def test_user_python_node_inside_native_pipeline():
    class Invert(rm.Node):
        node_type = "TestInvert"
        outputs = ("out", "stats")

        def __init__(self, scale=1.0):
            self.scale = scale

        def process(self, audio):
            return [rm.Audio(-audio.samples * np.float32(self.scale), audio.sample_rate),
                    rm.Emit("stats", {"frames": audio.frames})]

    p = rm.Pipeline().add_node("g", "Gain", gain_db=0.0).add_node("inv", Invert, scale=2.0).connect("g", "inv")
    assert p.runtime == "native"
    assert p.node_runtimes() == {"g": "native", "inv": "python"}
    out = p.run(rm.Audio(np.array([0.25, -0.5], np.float32), 16000))
    np.testing.assert_array_equal(out["inv"][0].samples, [-0.5, 1.0])
    assert out["inv.stats"] == [{"frames": 2}]
    py = rm.Pipeline.from_manifest(p.to_manifest(), runtime="python").run(
        rm.Audio(np.array([0.25, -0.5], np.float32), 16000))
    assert py["inv.stats"] == out["inv.stats"]


def test_python_exception_is_chained(runtime):
    class Exploding(rm.Node):
        node_type = "TestExploding"

        def process(self, audio):
            raise KeyError("the cause")

    p = rm.Pipeline(runtime=runtime).add_node("g", "Gain").add_node("boom", Exploding).connect("g", "boom")
    with pytest.raises(rm.NodeError) as info:
        p.run(rm.Audio(np.zeros(4, np.float32), 8000))
    err = info.value
    assert err.node_id == "boom" and err.operation == "process" and not err.retryable
    assert isinstance(err.__cause__, KeyError)
    assert err.__cause__.__traceback__ is not None
    assert "the cause" in str(err)


def test_transient_error_is_retryable(runtime):
    class Flaky(rm.Node):
        node_type = "TestFlaky"

        def process(self, audio):
            raise rm.TransientError("try again")

    with pytest.raises(rm.NodeError) as info:
        rm.Pipeline(runtime=runtime).add_node("f", Flaky).run(rm.Audio(np.zeros(2, np.int16), 8000))
    assert info.value.retryable and isinstance(info.value.__cause__, rm.TransientError)


@pytest.mark.parametrize("manifest, path", [
    ({"version": "2", "nodes": [{"id": "a", "node_type": "Gain"}]}, "version"),
    ({"version": "1", "nodes": []}, "nodes"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain", "colour": 1}]}, "nodes[0].colour"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Nope"}]}, "nodes[0].node_type"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain"}, {"id": "a", "node_type": "Gain"}]}, "nodes[1].id"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain", "params": {"gain_db": "x"}}]},
     "nodes[0].params.gain_db"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain", "params": {"gian_db": 1}}]},
     "nodes[0].params.gian_db"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain", "runtime_hint": "gpu"}]}, "nodes[0].runtime_hint"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain"}], "connections": [{"from": "a", "to": "b"}]},
     "connections[0].to"),
    ({"version": "1", "nodes": [{"id": "a", "node_type": "Gain"}, {"id": "b", "node_type": "Gain"}],
      "connections": [{"from": "a.nope", "to": "b"}]}, "connections[0].from"),
])
def test_manifest_errors_name_the_field(runtime, manifest, path):
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline.from_manifest(manifest, runtime=runtime)
    assert info.value.path == path
    assert isinstance(info.value, ValueError)


def test_python_node_param_error_names_param():
    class Strict(rm.Node):
        node_type = "TestStrict"

        def __init__(self, level=0):
            if level > 3:
                raise rm.ParamError("level", "too high")

        def process(self, audio):
            return audio

    rm.register_node(Strict)
    for runtime in ("native", "python"):
        with pytest.raises(rm.ManifestError) as info:
            rm.Pipeline.from_manifest({"version": "1", "nodes": [
                {"id": "s", "node_type": "TestStrict", "params": {"level": 9}}]}, runtime=runtime)
        assert info.value.path == "nodes[0].params.level", runtime
        assert "too high" in str(info.value)


def test_cycle_is_named(runtime):
    m = {"version": "1", "nodes": [{"id": n, "node_type": "Gain"} for n in "abc"],
         "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}]}
    with pytest.raises(rm.CycleError) as info:
        rm.Pipeline.from_manifest(m, runtime=runtime)
    assert isinstance(info.value, rm.GraphError)
    assert info.value.nodes[0] == info.value.nodes[-1]
    assert set(info.value.nodes) == {"b", "c"}


def test_hint_native_without_native_implementation():
    class OnlyPython(rm.Node):
        node_type = "TestOnlyPython"

        def process(self, audio):
            return audio

    rm.register_node(OnlyPython)
    m = {"version": "1", "nodes": [{"id": "o", "node_type": "TestOnlyPython", "runtime_hint": "native"}]}
    with pytest.raises(rm.ManifestError, match="no native implementation"):
        rm.Pipeline.from_manifest(m)


@pytest.mark.parametrize("bad, error", [
    (np.zeros(4, np.uint8), "unsupported dtype"),
    (np.zeros(4, np.complex64), "unsupported dtype"),
    (np.zeros((2, 2, 2), np.float32), "shape"),
])
def test_bad_audio_is_rejected(bad, error):
    with pytest.raises(rm.InvalidInputError, match=error):
        rm.Audio(bad, 16000)


@pytest.mark.parametrize("rate", [0, -1, 1.5, True])
def test_bad_sample_rate(rate):
    with pytest.raises(rm.InvalidInputError, match="sample_rate"):
        rm.Audio(np.zeros(4, np.float32), rate)


def test_non_contiguous_input_is_rejected_not_copied():
    x = np.zeros((100, 2), np.float32)[:, :1].reshape(-1)  # strided view, mono
    assert not x.flags.c_contiguous
    with pytest.raises(rm.InvalidInputError, match="C-contiguous"):
        gain_chain("native").run(rm.Audio(x, 16000))


def test_run_takes_audio_only():
    with pytest.raises(rm.InvalidInputError, match="Audio"):
        gain_chain().run(np.zeros(4, np.float32))


def test_input_and_output_are_not_copied_in_python():
    # 8 MB in; if Python copied the input or the output, tracemalloc (which sees numpy
    # allocations but not Rust's) would record a payload-sized peak.
    x = np.ones(2_000_000, np.float32)
    p = gain_chain("native", 0.0)
    p.run(rm.Audio(x[:480], 16000))  # warm caches and lazy state outside the measurement
    tracemalloc.start()
    out = p.run(rm.Audio(x, 16000))["out"][0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < x.nbytes // 20, f"peak {peak} bytes for a {x.nbytes}-byte payload"
    assert not out.samples.flags.owndata
    np.testing.assert_array_equal(out.samples, x)


def test_output_view_outlives_pipeline_and_result():
    x = np.linspace(-1, 1, 4096, dtype=np.float32)
    p = gain_chain("native", 0.0)
    view = p.run(rm.Audio(x, 16000))["out"][0].samples
    del p
    gc.collect()
    junk = [np.full(4096, 7.0, np.float32) for _ in range(64)]  # reuse freed memory if any
    np.testing.assert_array_equal(view, x)
    assert junk


def test_concurrent_runs_on_separate_pipelines_match():
    import threading

    x = np.random.default_rng(1).standard_normal(4800).astype(np.float32)
    expected = gain_chain("native", -3.0).run(rm.Audio(x, 48000))["out"][0].samples
    failures = []

    def worker():
        p = gain_chain("native", -3.0)
        for _ in range(50):
            if not np.array_equal(p.run(rm.Audio(x, 48000))["out"][0].samples, expected):
                failures.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_empty_input_runs(runtime):
    out = gain_chain(runtime).run(rm.Audio(np.zeros(0, np.float32), 16000))
    assert out["out"][0].frames == 0


@pytest.mark.parametrize("outputs,problem", [(("a", ""), "is empty"), (("a", "a"), "is given twice"),
                                             (("a", "b.c"), "contains '.'")])
def test_python_node_port_names_are_checked_at_registration(outputs, problem):
    class Ports(rm.Node):
        node_type = "PortsUnderTest"

        def process(self, data):
            return data

    Ports.outputs = outputs
    with pytest.raises(rm.InvalidInputError, match=rf"output port name .* \(outputs\[1\]\) {problem}"):
        rm.register_node(Ports)
    Ports.outputs = "out"
    with pytest.raises(rm.InvalidInputError, match="non-empty tuple"):
        rm.register_node(Ports)


@pytest.mark.parametrize("node_type, hint", [("Resampel", "Resample"), ("passthrough", "PassThrough"), ("Gian", "Gain"),
                                             ("Nope", None)])
def test_unknown_node_type_suggests_the_nearest(runtime, node_type, hint):
    m = {"version": "1", "nodes": [{"id": "a", "node_type": node_type}]}
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline.from_manifest(m, runtime=runtime)
    assert info.value.path == "nodes[0].node_type"
    assert (f"did you mean '{hint}'?" in str(info.value)) if hint else "did you mean" not in str(info.value)


@pytest.mark.parametrize("end, typo, meant", [("from", "gian", "gain"), ("to", "snik", "sink")])
def test_unknown_connection_end_suggests_a_node_id(runtime, end, typo, meant):
    c = {"from": "gain", "to": "sink", end: typo}
    m = {"version": "1", "nodes": [{"id": "gain", "node_type": "Gain", "params": {"gain_db": 1.0}},
                                   {"id": "sink", "node_type": "PassThrough"}], "connections": [c]}
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline.from_manifest(m, runtime=runtime)
    assert info.value.path == f"connections[0].{end}"
    assert f"did you mean '{meant}'?" in str(info.value)


BUILTIN_TYPES = ["Resample", "PassThrough", "Gain", "Downmix", "Rechunk", "FormatConverter", "VAD"]


@settings(max_examples=150, deadline=None)
@given(base=st.sampled_from(BUILTIN_TYPES),
       edits=st.lists(st.tuples(st.integers(0, 20), st.characters(min_codepoint=97, max_codepoint=122)), max_size=3))
def test_both_runtimes_suggest_alike(base, edits):
    """A node type a few letters off a built-in one: the same error text on both runtimes
    (unless the native runtime suggests a plugin type, which the Python runtime lacks)."""
    name = base
    for at, ch in edits:
        at %= len(name) + 1
        name = name[:at] + ch + name[at + 1:]
    m = {"version": "1", "nodes": [{"id": "a", "node_type": name}]}
    messages = []
    for runtime in ("native", "python"):
        try:
            rm.Pipeline.from_manifest(m, runtime=runtime)
            messages.append(None)
        except rm.ManifestError as e:
            messages.append(str(e))
    suggested = messages[0].rsplit("did you mean '", 1)[1].split("'")[0] if messages[0] and "did you mean" in messages[0] else None
    assume(suggested is None or suggested in registered())
    assert messages[0] == messages[1]
