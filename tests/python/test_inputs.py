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
