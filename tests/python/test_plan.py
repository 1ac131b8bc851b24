"""Caps negotiation: the plan both runtimes make, converters inserted where a node's
input does not fit, auto_convert, declared input caps, and random graphs whose plans
are checked independently of the negotiator and then run."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm
from conftest import RUNTIMES
from test_vad import voiced_bursts

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from vad_dataset import SENTENCES, speak  # noqa: E402

DTYPES = {"f32": np.float32, "i16": np.int16, "i32": np.int32, "f64": np.float64}


def audio(fmt: str, channels: int, rate: int, seconds: float = 0.05, seed: int = 0) -> rm.Audio:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (max(1, int(rate * seconds)), channels))
    if fmt.startswith("i"):
        x = x * np.iinfo(DTYPES[fmt]).max
    return rm.Audio(np.ascontiguousarray(x.astype(DTYPES[fmt])), rate)


def inserted(plan: dict) -> list[tuple[str, str, dict]]:
    return [(n["id"], n["node_type"], n["params"]) for n in plan["nodes"] if n["inserted"]]


VAD = {"version": "1", "nodes": [{"id": "vad", "node_type": "VAD"}]}


def speech_48k() -> np.ndarray:
    """Three spoken sentences with pauses at 48 kHz (espeak-ng), or voiced bursts without it."""
    if shutil.which("espeak-ng") is None:
        return voiced_bursts(3, rate=48000, seconds=6.0, snr_db=15)[0]
    pause = np.zeros(16000)
    x16 = np.concatenate([np.concatenate([pause, speak(t, "en-us", 160, 50)]) for t in SENTENCES[:2]] + [pause])
    up = rm.Pipeline().add_node("r", "Resample", target_rate=48000).run(rm.Audio(x16.astype(np.float32), 16000))
    return np.concatenate([b.samples for b in up["r"]]).astype(np.float64)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("fmt", ["i16", "f64"])
def test_stereo_48k_into_silero_vad_gives_what_the_hand_written_chain_gives(runtime, fmt):
    """The issue's example: 48 kHz stereo int16 (or float64, as soundfile reads it)
    straight into VAD; the silero engine takes only 16 kHz, so three converters."""
    from remotemedia.model import silero_package_model
    if silero_package_model() is None:
        pytest.skip("needs the silero-vad package")
    mono = speech_48k()
    x = np.stack([mono, mono * 0.8], axis=1) * 0.5
    a = rm.Audio((x * 32767).astype(np.int16) if fmt == "i16" else x, 48000)
    params = {"engine": "silero"}
    auto = rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "vad", "node_type": "VAD", "params": params}]},
                                     runtime=runtime)
    hand = rm.Pipeline.from_manifest({"version": "1", "nodes": [
        {"id": "fc", "node_type": "FormatConverter", "params": {"format": "f32"}},
        {"id": "dm", "node_type": "Downmix"},
        {"id": "rs", "node_type": "Resample", "params": {"target_rate": 16000}},
        {"id": "vad", "node_type": "VAD", "params": params}],
        "connections": [{"from": "fc", "to": "dm"}, {"from": "dm", "to": "rs"}, {"from": "rs", "to": "vad"}]},
        runtime=runtime)
    got, want = auto.run(a), hand.run(a)
    assert got["vad.segments"] == want["vad.segments"] and got["vad.segments"], "the same segments"
    assert [e["speech"] for e in got["vad"]] == [e["speech"] for e in want["vad"]]
    # float64 is mixed before it is converted (Downmix takes float64): scores agree to rounding
    assert np.allclose(np.concatenate([e["score"] for e in got["vad"]]),
                       np.concatenate([e["score"] for e in want["vad"]]), atol=1e-5)
    chain = [("FormatConverter", {"format": "f32"}), ("Downmix", {}), ("Resample", {"target_rate": 16000})]
    if fmt == "f64":
        chain[:2] = chain[1], chain[0]
    assert [(t, p) for _, t, p in inserted(auto.plan())] == chain
    ids = [n["id"] for n in auto.metrics()["nodes"]]
    assert "input→vad.resample" in ids, "inserted nodes appear in metrics"
    assert auto.node_runtimes()["input→vad.resample"] == runtime and set(auto.node_latencies()) == set(ids)
    off = {"version": "1", "auto_convert": False, "input": {"format": fmt, "channels": 2, "sample_rate": 48000},
           "nodes": [{"id": "vad", "node_type": "VAD", "params": params}]}
    with pytest.raises(rm.ManifestError) as e:
        rm.Pipeline.from_manifest(off, runtime=runtime)
    fix = " → ".join(t if not p else f"{t}({', '.join(f'{k}={v}' for k, v in p.items())})" for t, p in chain)
    assert e.value.path == "input" and f"inserting {fix} would fix it" in str(e.value)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_manifest_round_trips_as_written(runtime):
    m = {"version": "1", "metadata": {}, "input": {"format": "i16", "channels": 2}, "auto_convert": True,
         "nodes": [{"id": "vad", "node_type": "VAD", "params": {}, "runtime_hint": "auto"}], "connections": []}
    p = rm.Pipeline.from_manifest(m, runtime=runtime)
    assert p.to_manifest() == m
    assert [i for i, _, _ in inserted(p.plan())] == ["input→vad.to_f32", "input→vad.downmix"], \
        "the declared fields are planned for at once; the rate waits for the first chunk"
    p.run(audio("i16", 2, 44100))
    assert [i for i, _, _ in inserted(p.plan())] == ["input→vad.to_f32", "input→vad.downmix", "input→vad.resample"]
    with pytest.raises(rm.InvalidInputError, match="declares i16, 2 ch, \\? Hz"):
        p.run(audio("f32", 1, 16000))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_stream_refuses_caps_that_need_other_converters_until_flushed(runtime):
    p = rm.Pipeline.from_manifest(VAD, runtime=runtime)
    with p.stream() as s:
        s.push(audio("f32", 1, 16000))
        s.push(audio("f32", 1, 16000))
        with pytest.raises(rm.InvalidInputError, match="flush the stream"):
            s.push(audio("i16", 2, 16000))
        s.flush()
        s.push(audio("i16", 2, 16000))
        s.flush()
        assert s.pull()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_plan_for_given_caps_leaves_the_pipeline_as_it_was(runtime):
    p = rm.Pipeline.from_manifest(VAD, runtime=runtime)
    before = p.plan()
    assert len(inserted(p.plan({"format": "i32", "channels": 6, "sample_rate": 96000}))) == 3
    assert len(inserted(p.plan(audio("f32", 1, 8000)))) == 0
    assert p.plan() == before
    with pytest.raises(rm.InvalidInputError):
        p.plan({"format": "u8"})
    with pytest.raises(rm.ManifestError, match="Resample cannot take"):
        p.plan({"sample_rate": 4000})


def test_python_nodes_declare_caps_and_get_converters_on_both_runtimes():
    @rm.register_node
    class Wants8k(rm.Node):
        """Takes f32 mono at 8 kHz."""
        node_type = "Wants8k"
        caps = {"input": {"kind": "audio", "format": ["f32"], "channels": [1], "sample_rate": [8000]},
                "outputs": {"out": {}}}

        def process(self, data):
            return data

    plans = []
    for runtime in RUNTIMES:
        p = rm.Pipeline(runtime=runtime).add_node("w", Wants8k)
        out = p.run(audio("i16", 2, 16000))["w"]
        assert {(a.samples.dtype, a.channels, a.sample_rate) for a in out} == {(np.dtype(np.float32), 1, 8000)}
        plans.append(p.plan())
    assert all(plan == plans[0] for plan in plans)
    with pytest.raises(rm.InvalidInputError, match="caps.input.format"):
        rm.register_node(type("Bad", (rm.Node,), {"node_type": "BadCaps", "caps": {"input": {"format": "u8"}},
                                                  "process": lambda self, d: d}))


# ---- random graphs -----------------------------------------------------------------------

NODES = st.sampled_from([
    ("PassThrough", {}), ("Gain", {"gain_db": -3.0}), ("FormatConverter", {"format": "i16"}),
    ("FormatConverter", {"format": "f64"}), ("Downmix", {}), ("Downmix", {"map": [0, 0]}),
    ("Resample", {"target_rate": 16000}), ("Resample", {"target_rate": 22050}), ("Rechunk", {"frame_samples": 160}),
    ("VAD", {}), ("VAD", {"frame_ms": 10}),
])
PORTS = {"VAD": ["frames", "segments", "audio"]}


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 7))
    nodes = [draw(NODES) for _ in range(n)]
    connections = []
    for j in range(1, n):
        for i in draw(st.sets(st.integers(0, j - 1), max_size=2)):
            port = draw(st.sampled_from(PORTS.get(nodes[i][0], ["out"])))
            connections.append({"from": f"n{i}" if port in ("out", "frames") else f"n{i}.{port}", "to": f"n{j}"})
    caps = {"format": draw(st.sampled_from(list(DTYPES))), "channels": draw(st.integers(1, 3)),
            "sample_rate": draw(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000] * 3 + [4000, 200000]))}
    return {"version": "1", "input": caps, "auto_convert": draw(st.sampled_from([True, True, True, False])),
            "nodes": [{"id": f"n{i}", "node_type": t, "params": p} for i, (t, p) in enumerate(nodes)],
            "connections": connections}


def takes(node_type: str, params: dict, caps: dict) -> bool:
    """What each built-in node takes, written out by hand (not read from the contract)."""
    if caps["kind"] == "json":
        return node_type == "PassThrough"
    fmt, ch, rate = caps["format"], caps["channels"], caps["sample_rate"]
    if node_type == "Downmix":
        return "map" in params or fmt in ("f32", "f64")
    if node_type == "Resample":
        return fmt == "f32" and 8000 <= rate <= 192000
    if node_type == "VAD":
        return fmt == "f32" and ch == 1 and rate in (8000, 16000, 32000, 48000)
    return True


def outcome(m: dict, runtime: str):
    try:
        p = rm.Pipeline.from_manifest(m, runtime=runtime)
        return "plan", p.plan(), p
    except rm.ManifestError as e:
        return "error", (type(e).__name__, e.path, str(e)), None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=graphs())
def test_random_graphs_negotiate_alike_and_every_edge_fits(m):
    results = [outcome(m, runtime) for runtime in RUNTIMES]
    assert all(r[:2] == results[0][:2] for r in results), "both runtimes make the same plan or the same error"
    kind, plan, _ = results[0]
    if kind == "error":
        assert not m["auto_convert"] or "no converter" in plan[2] or "cannot take" in plan[2], plan
        return
    by_id = {n["id"]: n for n in plan["nodes"]}
    params = {n["id"]: n["params"] for n in m["nodes"]} | {n["id"]: n["params"] for n in plan["nodes"] if n["inserted"]}
    for e in plan["edges"]:
        to = by_id[e["to"]]
        assert takes(to["node_type"], params[e["to"]], e["caps"]), (e, to)
    fed = {e["to"] for e in plan["edges"]}
    for n in plan["nodes"]:
        if n["id"] not in fed:
            assert takes(n["node_type"], params[n["id"]], {"kind": "audio", **m["input"]}), n
    if not m["auto_convert"]:
        assert not any(n["inserted"] for n in plan["nodes"])
    counts = []
    for _, _, p in results:  # a plan found at validation runs without a caps failure
        out = p.run(audio(**{"fmt": m["input"]["format"], "channels": m["input"]["channels"],
                             "rate": m["input"]["sample_rate"]}))
        counts.append({k: len(v) for k, v in out.items()})
    assert all(c == counts[0] for c in counts)


# ---- remotemedia plan ---------------------------------------------------------------------

def test_cli_plan_shows_the_table_dot_and_json(tmp_path, capsys):
    from remotemedia import audiofile, cli
    m = tmp_path / "m.json"
    m.write_text('{"version": "1", "nodes": [{"id": "g", "node_type": "Gain"}, {"id": "vad", "node_type": "VAD"}],'
                 ' "connections": [{"from": "g", "to": "vad"}]}')
    assert cli.main(["plan", str(m), "--input-caps", "i16,2,44100"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "input: i16, 2 ch, 44100 Hz"
    assert table[2].split()[:2] == ["g", "Gain"] and table[6].split()[:2] == ["vad", "VAD"]
    assert [line.split()[:2] for line in table[3:6]] == [["+", "g→vad.to_f32"], ["+", "g→vad.downmix"], ["+", "g→vad.resample"]]
    wav = tmp_path / "in.wav"
    audiofile.write(wav, audio("i16", 1, 48000))
    assert cli.main(["plan", str(m), "--input", str(wav), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["input"] == {"kind": "audio", "format": "i16", "channels": 1, "sample_rate": 48000}
    assert [i for i, _, _ in inserted(plan)] == ["g→vad.to_f32"]
    assert cli.main(["plan", str(m), "--input-caps", "f32,1,44100", "--dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph plan {") and '"g→vad.resample" -> "vad" [label="out: f32, 1 ch, 16000 Hz"]' in dot
    assert 'style=dashed' in dot
    assert cli.main(["plan", str(m), "--input-caps", "i16,2,4000"]) == 2
    assert "manifest error at connections[0]" in capsys.readouterr().err
    assert cli.main(["plan", str(m), "--input-caps", "i16,2"]) == 2


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_add_node_checks_type_and_params_at_once(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("g", "Gain")
    with pytest.raises(rm.ManifestError) as e:
        p.add_node("r", "Resample", target_rate=5)
    assert e.value.path == "nodes[1].params.target_rate"
    with pytest.raises(rm.ManifestError, match="did you mean 'Resample'") as e:
        p.add_node("r", "Resampel", target_rate=16000)
    assert e.value.path == "nodes[1].node_type"
    with pytest.raises(rm.ManifestError) as e:
        p.add_node("v", "VAD", frame_size=30)
    assert e.value.path == "nodes[1].params.frame_size"
    assert len(p.to_manifest()["nodes"]) == 1, "a refused node is not added"
    p.add_node("r", "Resample", target_rate=16000).connect("g", "r")
    assert p.run(audio("f32", 1, 48000))["r"]
