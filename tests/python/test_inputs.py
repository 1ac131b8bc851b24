"""Named pipeline inputs and input ports: two inputs into ``Mix`` on both runtimes, run
at once, pushed together and apart in different chunk sizes, in different formats and
rates (converted per port), against a numpy reference; and every refusal."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm
from conftest import RUNTIMES


def mixer(runtime: str, gains=(1.0, 0.5), inputs=({"name": "mic"}, {"name": "far"})) -> rm.Pipeline:
    """``$mic`` → Gain(0 dB) → mix.in0, ``$far`` → mix.in1."""
    return rm.Pipeline.from_manifest({
        "version": "1", "inputs": list(inputs),
        "nodes": [{"id": "g", "node_type": "Gain", "params": {"gain_db": 0.0}},
                  {"id": "mix", "node_type": "Mix", "params": {"gains": list(gains)}}],
        "connections": [{"from": "$mic", "to": "g"}, {"from": "g", "to": "mix.in0"}, {"from": "$far", "to": "mix.in1"}],
    }, runtime=runtime)


def reference(gains, *signals) -> np.ndarray:
    """The weighted sum in f32, missing samples as zeros (the order of operations Mix uses)."""
    n = max(len(x) for x in signals)
    padded = [np.concatenate([x, np.zeros(n - len(x), np.float32)]).astype(np.float32) for x in signals]
    out = np.float32(gains[0]) * padded[0]
    for g, x in zip(gains[1:], padded[1:]):
        out += np.float32(g) * x
    return out


def joined(pairs, key="mix") -> np.ndarray:
    items = [item.samples for k, item in pairs if k == key]
    return np.concatenate(items) if items else np.zeros(0, np.float32)


def signal(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)


def test_one_shot_equals_the_numpy_reference(runtime):
    a, b = signal(480, 1), signal(300, 2)
    p = mixer(runtime)
    assert p.inputs == ["mic", "far"]
    got = np.concatenate([x.samples for x in p.run({"mic": rm.Audio(a, 16000), "far": rm.Audio(b, 16000)})["mix"]])
    assert np.array_equal(got, reference((1.0, 0.5), a, b)), "the shorter input is padded with zeros at the end"
    out = np.full(600, 9, np.float32)
    assert p.run_into({"far": rm.Audio(b, 16000), "mic": rm.Audio(a, 16000)}, out) == 480
    assert np.array_equal(out[:480], reference((1.0, 0.5), a, b)) and (out[480:] == 9).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes_a=st.lists(st.integers(0, 400), min_size=1, max_size=6),
       sizes_b=st.lists(st.integers(0, 400), min_size=1, max_size=6),
       together=st.booleans(), gains=st.lists(st.floats(-4, 4, width=32), min_size=2, max_size=2), seed=st.integers(0, 999))
def test_streams_pushed_together_or_apart_equal_the_reference_on_both_runtimes(sizes_a, sizes_b, together, gains, seed):
    a, b = signal(sum(sizes_a), seed), signal(sum(sizes_b), seed + 1)
    want = reference(gains, a, b)
    outputs = []
    for runtime in RUNTIMES:
        with mixer(runtime, gains).stream() as s:
            pieces_a = np.split(a, np.cumsum(sizes_a)[:-1])
            pieces_b = np.split(b, np.cumsum(sizes_b)[:-1])
            if together:
                for x, y in zip(pieces_a, pieces_b):
                    s.push({"mic": rm.Audio(x, 16000), "far": rm.Audio(y, 16000)})
                rest = pieces_a[len(pieces_b):] + pieces_b[len(pieces_a):]
                names = ["mic"] * len(pieces_a[len(pieces_b):]) + ["far"] * len(pieces_b[len(pieces_a):])
                for name, x in zip(names, rest):
                    s.push(rm.Audio(x, 16000), input=name)
            else:
                for x in pieces_a:
                    s.push(rm.Audio(x, 16000), input="mic")
                for y in pieces_b:
                    s.push({"far": rm.Audio(y, 16000)})
            s.flush()
            got = joined(s.pull())
        assert np.array_equal(got, want), runtime
        outputs.append(got)
    assert all(np.array_equal(o, outputs[0]) for o in outputs)


def test_inputs_in_other_formats_and_rates_are_converted_per_port(runtime):
    a = signal(1600, 3)
    far = np.stack([signal(4800, 4), signal(4800, 5)], axis=1)
    b = rm.Audio((far * 20000).astype(np.int16), 48000)
    p = mixer(runtime, inputs=({"name": "mic", "format": "f32", "channels": 1, "sample_rate": 16000}, {"name": "far"}))
    got = np.concatenate([x.samples for x in p.run({"mic": rm.Audio(a, 16000), "far": b})["mix"]])
    inserted = [(n["id"], n["node_type"]) for n in p.plan()["nodes"] if n["inserted"]]
    assert inserted == [("$far→mix.to_f32", "FormatConverter"), ("$far→mix.downmix", "Downmix"),
                        ("$far→mix.resample", "Resample")]
    mix_node = next(n for n in p.plan()["nodes"] if n["id"] == "mix")
    assert mix_node["inputs"]["in1"] == {"kind": "audio", "format": "f32", "channels": 1, "sample_rate": 16000}
    # the reference: the same converters alone, then the weighted sum
    chain = rm.Pipeline(runtime=runtime).add_node("f", "FormatConverter", format="f32").add_node("d", "Downmix")
    chain.add_node("r", "Resample", target_rate=16000).connect("f", "d").connect("d", "r")
    converted = np.concatenate([x.samples for x in chain.run(b)["r"]])
    assert np.array_equal(got, reference((1.0, 0.5), a, converted))


def test_refused_calls_name_the_inputs_and_queue_nothing(runtime):
    p = mixer(runtime)
    a = rm.Audio(signal(160, 6), 16000)
    with pytest.raises(rm.InvalidInputError, match="has the inputs mic, far"):
        p.run(a)
    with pytest.raises(rm.InvalidInputError, match=r"no input 'mike'; did you mean 'mic'\?; inputs: mic, far"):
        p.run({"mike": a})
    with pytest.raises(rm.InvalidInputError, match="an empty dict"):
        p.run({})
    with pytest.raises(rm.InvalidInputError, match="input 'far' takes remotemedia.Audio"):
        p.run({"mic": a, "far": [0.0]})
    with p.stream() as s:
        s.push(a, input="mic")
        before = s.stats()
        for bad in (lambda: s.push(a), lambda: s.push({"nope": a}), lambda: s.push(a, input="nope"),
                    lambda: s.push({"mic": a}, input="mic")):
            with pytest.raises(rm.InvalidInputError):
                bad()
        assert s.stats() == before, "nothing was queued"
    one = rm.Pipeline(runtime=runtime).add_node("g", "Gain")
    assert one.inputs == ["input"]
    assert one.run({"input": a})["g"][0].samples.tolist() == one.run(a)["g"][0].samples.tolist()


@pytest.mark.parametrize("manifest, path, says", [
    ({"inputs": [{"name": "mic"}], "connections": [{"from": "$mice", "to": "mix.in0"}]}, "connections[0].from",
     "no pipeline input '$mice'; did you mean 'mic'?; inputs: mic"),
    ({"connections": [{"from": "$mic", "to": "mix.in0"}]}, "connections[0].from", "declare it in \"inputs\""),
    ({"inputs": [{"name": "mic"}, {"name": "far"}], "connections": [{"from": "$mic", "to": "mix.in0"},
                                                                      {"from": "$mic", "to": "mix.in1"}]},
     "inputs[1]", "input 'far' feeds no node"),
    ({"inputs": [{"name": "mic"}, {"name": "mic"}]}, "inputs[1].name", "duplicate input name 'mic'"),
    ({"inputs": [{"name": "a b"}]}, "inputs[0].name", "may only hold"),
    ({"inputs": [{"name": "mic", "rate": 8000}]}, "inputs[0].rate", "unknown field"),
    ({"inputs": [{"name": "mic", "sample_rate": 0}]}, "inputs[0].sample_rate", "not a valid sample_rate"),
    ({"input": {}, "inputs": [{"name": "mic"}]}, "inputs", "not both"),
    ({"inputs": [{"name": "a"}, {"name": "b"}], "connections": []}, "inputs", "2 inputs are declared"),
    ({"inputs": [{"name": "mic"}], "connections": [{"from": "$mic", "to": "mix.in7"}]}, "connections[0].to",
     "node 'mix' (Mix) has no input port 'in7'"),
    ({"inputs": [{"name": "mic"}], "connections": [{"from": "$mic", "to": "mix.in0"}, {"from": "mix", "to": "g.in"},
                                                     {"from": "g", "to": "h"}]}, "nodes[2]", "node 'x' gets nothing"),
])
def test_manifest_mistakes_are_the_same_error_on_both_runtimes(manifest, path, says):
    m = {"version": "1", "nodes": [{"id": "mix", "node_type": "Mix"}, {"id": "g", "node_type": "Gain"},
                                   {"id": "x", "node_type": "PassThrough"}, {"id": "h", "node_type": "PassThrough"}],
         "connections": [{"from": "$mic", "to": "mix.in0"}], **manifest}
    if path != "nodes[2]" and "nodes[2]" not in path:
        m["nodes"] = m["nodes"][:1]
    errors = []
    for runtime in RUNTIMES:
        with pytest.raises(rm.ManifestError) as e:
            rm.Pipeline.from_manifest(m, runtime=runtime).run({"mic": rm.Audio(np.zeros(4, np.float32), 16000)})
        assert e.value.path == path and says in str(e.value), (runtime, e.value.path, str(e.value))
        errors.append(str(e.value))
    assert len(set(errors)) == 1, errors
def test_a_python_node_with_two_input_ports_learns_where_each_item_came_from(runtime):
    class Tag(rm.Node):
        """Emits {"port": index, "frames": n} for every item."""
        node_type = "TagPorts"
        outputs = ("out",)
        caps = {"inputs": {"left": {"kind": "audio"}, "right": {"kind": "audio"}}, "outputs": {"out": {"kind": "json"}}}

        def process(self, data):
            raise AssertionError("a node with two input ports is called through process_port")

        def process_port(self, port, data):
            return {"port": port, "frames": data.frames}

    rm.register_node(Tag)
    p = rm.Pipeline.from_manifest({
        "version": "1", "inputs": [{"name": "a"}, {"name": "b"}],
        "nodes": [{"id": "t", "node_type": "TagPorts"}],
        "connections": [{"from": "$b", "to": "t.right"}, {"from": "$a", "to": "t.left"}]}, runtime=runtime)
    out = p.run({"a": rm.Audio(np.zeros(3, np.float32), 8000), "b": rm.Audio(np.zeros(5, np.float32), 8000)})["t"]
    assert out == [{"port": 0, "frames": 3}, {"port": 1, "frames": 5}]
    assert p.plan()["nodes"][0]["inputs"].keys() == {"left", "right"}


class Configured(rm.Node):
    """Records every configure (its caps) and process call, in order, class-wide."""
    node_type = "RecordsConfigure"
    outputs = ("out",)
    caps = {"input": {"kind": "audio", "format": ["f32"]}, "outputs": {"out": {}}}
    calls: list = []

    def configure(self, inputs):
        Configured.calls.append(("configure", inputs))

    def process(self, data):
        Configured.calls.append(("process", data.frames))
        return data


rm.register_node(Configured)


def test_configure_is_called_once_per_stream_before_the_first_chunk_with_the_negotiated_caps(runtime):
    Configured.calls.clear()
    p = rm.Pipeline(runtime=runtime).add_node("c", "RecordsConfigure")
    x = rm.Audio(np.zeros((160, 2), np.int16), 8000)
    p.run(x)
    negotiated = ("audio", "f32", 2, 8000)  # a converter to f32 was inserted before it
    assert Configured.calls == [("configure", [negotiated]), ("process", 160)]
    Configured.calls.clear()
    with p.stream() as s:
        for _ in range(3):
            s.push(x)
        s.flush()
        s.push(x)
    assert Configured.calls == [("configure", [negotiated])] + [("process", 160)] * 3 + [("configure", [negotiated]),
                                                                                         ("process", 160)]


def test_a_node_that_refuses_its_caps_in_configure_fails_the_call_naming_the_operation(runtime):
    class Picky(rm.Node):
        node_type = "PickyConfigure"
        outputs = ("out",)

        def configure(self, inputs):
            if inputs[0][3] != 16000:
                raise rm.InvalidInputError(f"takes 16000 Hz, configured for {inputs[0][3]}")

        def process(self, data):
            return data

    rm.register_node(Picky)
    p = rm.Pipeline(runtime=runtime).add_node("p", "PickyConfigure")
    assert p.run(rm.Audio(np.zeros(4, np.float32), 16000))["p"]
    with pytest.raises(rm.InvalidInputError, match="takes 16000 Hz, configured for 8000") as e:
        p.run(rm.Audio(np.zeros(4, np.float32), 8000))
    assert (e.value.node_id, e.value.operation) == ("p", "configure")


@pytest.mark.parametrize("node_type, params, declared, emitted", [
    ("Resample", {"target_rate": 16000}, 48000, (2, 48000)),
    ("Rechunk", {"frame_samples": 160}, 16000, (1, 8000)),
    ("VAD", {}, 16000, (1, 8000)),
])
def test_built_ins_size_their_state_in_configure(runtime, node_type, params, declared, emitted):
    """Configured for the caps negotiated before data flows, a built-in refuses a first
    chunk of others: here its upstream node declares mono f32 at ``declared`` Hz but
    emits ``emitted`` (channels, rate)."""
    channels, rate = emitted

    class Liar(rm.Node):
        node_type = f"Liar{declared}{channels}{rate}"
        outputs = ("out",)
        caps = {"input": {"kind": "audio"}, "outputs": {"out": {"format": "f32", "channels": 1, "sample_rate": declared}}}

        def process(self, data):
            return rm.Audio(np.zeros((rate // 100, channels), np.float32).squeeze(), rate)

    rm.register_node(Liar)
    p = rm.Pipeline.from_manifest({"version": "1", "nodes": [
        {"id": "liar", "node_type": Liar.node_type}, {"id": "n", "node_type": node_type, "params": params}],
        "connections": [{"from": "liar", "to": "n"}]}, runtime=runtime)
    with pytest.raises(rm.InvalidInputError, match="its input port in got a chunk of .*configured, or its first chunk") as e:
        p.run(rm.Audio(np.zeros(160, np.float32), 16000))
    assert e.value.node_id == "n"


def test_the_python_runtime_refuses_a_built_in_type_it_has_no_implementation_of(monkeypatch):
    """The scope rule (docs/ARCHITECTURE.md): a native-only node type is a ManifestError
    at validation on the Python runtime, saying it needs the native library."""
    from remotemedia import executor
    monkeypatch.setitem(executor.NODES, "NativeOnly", {"node_type": "NativeOnly"})
    with pytest.raises(rm.ManifestError, match="node type 'NativeOnly' needs the native library") as e:
        rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "n", "node_type": "NativeOnly"}]}, runtime="python")
    assert e.value.path == "nodes[0].node_type"


# ---- random graphs of named inputs and multi-port nodes, on both runtimes ------------------

DTYPES = [np.float32, np.int16, np.int32, np.float64]


@st.composite
def named_graphs(draw):
    """Named inputs (1 to 3) feeding Gain, PassThrough and Mix nodes (2 or 3 ports),
    each port fed once, from an input or an earlier node; every input used."""
    names = [f"i{k}" for k in range(draw(st.integers(1, 3)))]
    nodes, connections = [], []
    for j in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["Gain", "PassThrough", "Mix"]))
        params = ({"gain_db": draw(st.sampled_from([-6.0, 0.0, 2.5]))} if kind == "Gain"
                  else {"gains": draw(st.lists(st.sampled_from([1.0, 0.5, -0.25]), min_size=2, max_size=3))} if kind == "Mix"
                  else {})
        nodes.append({"id": f"n{j}", "node_type": kind, "params": params})
        ports = [f"in{p}" for p in range(len(params["gains"]))] if kind == "Mix" else [None]
        for port in ports:
            sources = [f"${n}" for n in names] + [f"n{i}" for i in range(j)]
            src = draw(st.sampled_from(sources))
            connections.append({"from": src, "to": f"n{j}" if port is None else f"n{j}.{port}"})
    used = {c["from"] for c in connections}
    for name in names:
        if f"${name}" not in used:
            nodes.append({"id": f"p{name}", "node_type": "PassThrough", "params": {}})
            connections.append({"from": f"${name}", "to": f"p{name}"})
    return {"version": "1", "inputs": [{"name": n} for n in names], "nodes": nodes, "connections": connections}


@st.composite
def chunks(draw, names):
    out = {}
    for name in names:
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        channels, frames = draw(st.integers(1, 2)), draw(st.integers(0, 48))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        x = rng.uniform(-0.9, 0.9, (frames, channels))
        x = x.astype(dtype) if dtype.kind == "f" else (x * np.iinfo(dtype).max).astype(dtype)
        out[name] = rm.Audio(x if channels > 1 else x[:, 0].copy(), 16000)
    return out


def outcome_of(call):
    try:
        return "ok", call()
    except rm.RemoteMediaError as e:
        return "error", (type(e).__name__, getattr(e, "path", None), str(e))


def same(a, b) -> bool:
    if a[0] != b[0] or a[0] == "error":
        return a == b
    x, y = a[1], b[1]
    return list(x) == list(y) and all(
        len(x[k]) == len(y[k]) and all(np.array_equal(u.samples, v.samples) and u.sample_rate == v.sample_rate
                                       for u, v in zip(x[k], y[k])) for k in x)


@pytest.mark.skipif(len(RUNTIMES) < 2, reason="compares the native runtime with the Python one")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=named_graphs(), data=st.data())
def test_random_named_graphs_agree_on_both_runtimes_one_shot_and_streamed(m, data):
    given = data.draw(chunks([d["name"] for d in m["inputs"]]))
    pipelines = [rm.Pipeline.from_manifest(m, runtime=r) for r in RUNTIMES]
    plans = [p.plan() for p in pipelines]
    assert plans[0] == plans[1]
    runs = [outcome_of(lambda p=p: p.run(given)) for p in pipelines]
    assert same(*runs), runs
    streamed = []
    for p in pipelines:
        def stream(p=p):
            with p.stream() as s:
                for name, audio in given.items():  # each input alone, in two pieces
                    half = audio.frames // 2
                    for piece in (audio.samples[:half], audio.samples[half:]):
                        s.push(rm.Audio(np.ascontiguousarray(piece), 16000), input=name)
                s.flush()
                out: dict = {}
                for key, item in s.pull():
                    out.setdefault(key, []).append(item)
                return out
        streamed.append(outcome_of(stream))
    assert same(*streamed), streamed
    counts = [{n["id"]: (n["calls"], n["items_in"], n["items_out"]) for n in p.metrics()["nodes"]} for p in pipelines]
    assert counts[0] == counts[1]


@pytest.mark.skipif(len(RUNTIMES) < 2, reason="compares the native runtime with the Python one")
@settings(max_examples=60, deadline=None)
@given(m=named_graphs(), pick=st.data())
def test_broken_named_graphs_fail_the_same_way_with_the_same_message(m, pick):
    c = pick.draw(st.sampled_from(m["connections"]))
    how = pick.draw(st.sampled_from(["port", "input", "node"]))
    if how == "port":
        c["to"] = c["to"].split(".")[0] + ".nope"
    elif how == "input":
        c["from"] = "$missing"
    else:
        c["to"] = "ghost"
    errors = [outcome_of(lambda r=r: rm.Pipeline.from_manifest(m, runtime=r).run(
        {d["name"]: rm.Audio(np.zeros(4, np.float32), 16000) for d in m["inputs"]})) for r in RUNTIMES]
    assert errors[0][0] == "error" and errors[0] == errors[1], errors
