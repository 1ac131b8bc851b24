import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm
from helpers import write_entry_point_package
from remotemedia import audiofile, catalog, cli, native, node

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def third_party_package(tmp_path, monkeypatch):
    """An installed-looking distribution exposing a node through the entry-point group."""
    write_entry_point_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(node, "_entry_points_loaded", False)
    yield
    node._REGISTRY.pop("AcmeHalve", None)
    sys.modules.pop("acme_nodes", None)


def test_entry_point_nodes_are_discovered(third_party_package, runtime):
    m = {"version": "1", "nodes": [{"id": "g", "node_type": "Gain"}, {"id": "h", "node_type": "AcmeHalve"}],
         "connections": [{"from": "g", "to": "h"}]}
    p = rm.Pipeline.from_manifest(m, runtime=runtime)
    assert p.node_runtimes()["h"] == "python"
    out = p.run(rm.Audio(np.array([1.0, -0.5], np.float32), 16000))
    np.testing.assert_array_equal(out["h"][0].samples, [0.5, -0.25])


def test_unregistered_type_is_never_imported(runtime):
    m = {"version": "1", "nodes": [{"id": "x", "node_type": "os.system"}]}
    with pytest.raises(rm.ManifestError, match="unknown node type 'os.system'"):
        rm.Pipeline.from_manifest(m, runtime=runtime)


@pytest.fixture
def wav_in(tmp_path):
    rng = np.random.default_rng(3)
    audio = rm.Audio(rng.integers(-20000, 20000, (4800, 2), dtype=np.int16), 48000)
    path = tmp_path / "in.wav"
    audiofile.write(path, audio)
    return path, audio


def test_wav_round_trip(wav_in):
    path, audio = wav_in
    assert audiofile.read(path) == audio


def test_cli_run_matches_the_api(tmp_path, wav_in, capsys):
    path, audio = wav_in
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"version": "1", "nodes": [{"id": "g", "node_type": "Gain",
                                                               "params": {"gain_db": -6}}]}))
    for runtime in ("native", "python"):
        out = tmp_path / f"out-{runtime}.wav"
        assert cli.main(["run", str(manifest), "-i", str(path), "-o", str(out), "--runtime", runtime]) == 0
        expected = rm.Pipeline.from_manifest(manifest, runtime="python").run(audio)["g"][0]
        assert audiofile.read(out) == expected
    assert "native runtime" in capsys.readouterr().err


def test_cli_reports_errors_without_traceback(tmp_path, wav_in, capsys):
    manifest = tmp_path / "bad.json"
    manifest.write_text('{"version": "1", "nodes": [{"id": "g", "node_type": "Gian"}]}')
    assert cli.main(["run", str(manifest), "-i", str(wav_in[0])]) == 2
    err = capsys.readouterr().err
    assert "nodes[0].node_type" in err and "Traceback" not in err


def test_cli_nodes_lists_runtimes(capsys):
    assert cli.main(["nodes", "--json"]) == 0
    rows = {r["node_type"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["Gain"]["runtimes"] == ["native", "python"]
    assert "gain_db" in rows["Gain"]["params_schema"]["properties"]
    assert rows["Gain"]["origin"] == {"kind": "built-in"}


def test_cli_nodes_json_follows_its_schema(capsys, third_party_package):
    import jsonschema

    schema = json.loads((ROOT / "docs" / "nodes.schema.json").read_text())
    assert cli.main(["nodes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row in rows:
        jsonschema.validate(row, schema)
    acme = next(r for r in rows if r["node_type"] == "AcmeHalve")
    assert acme["origin"] == {"kind": "python", "module": "acme_nodes"} and acme["runtimes"] == ["python"]


def test_cli_describes_one_node_type_in_full(capsys):
    assert cli.main(["nodes", "VAD"]) == 0
    text = capsys.readouterr().out
    for line in ("Origin        built-in", "Runtimes      native, python", "frames (default), segments, audio",
                 'engine: "spectral" | "silero" = "spectral"', "threshold: number or null [0, 1]", "gate: boolean = false"):
        assert line in text
    assert cli.main(["nodes", "FormatConverter"]) == 0
    assert 'format*: "f32" | "i16" | "i32" | "f64"' in capsys.readouterr().out, "required params are marked"
    assert cli.main(["nodes", "VAD", "--json"]) == 0
    vad = json.loads(capsys.readouterr().out)
    assert {p["name"]: p.get("default") for p in vad["params"]}["gate"] is False
    assert cli.main(["nodes", "Vad"]) == 2
    assert "no node type 'Vad'; known: " in capsys.readouterr().err


@pytest.mark.skipif(not rm.native_available(), reason="plugins load into the native runtime")
def test_cli_names_a_plugin_node_types_file(capsys):
    biquad = ROOT / "target" / "plugins" / "libbiquad.so"
    rm.load_plugin(str(biquad))
    assert cli.main(["nodes", "Biquad"]) == 0
    assert f"plugin biquad 1.0.0 ({biquad})" in capsys.readouterr().out


def test_node_reference_is_generated_from_the_specs():
    generated = catalog.markdown(catalog.node_types(builtin_only=True)) + "\n"
    assert (ROOT / "docs" / "NODES.md").read_text() == generated, "regenerate: remotemedia nodes --markdown > docs/NODES.md"


def test_cli_metrics(tmp_path, wav_in, capsys):
    path, _ = wav_in
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"version": "1", "nodes": [{"id": "g", "node_type": "Gain"}]}))
    out = tmp_path / "metrics.json"
    assert cli.main(["run", str(manifest), "-i", str(path), "--metrics", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["nodes"][0]["id"] == "g" and metrics["nodes"][0]["calls"] == 2
    err = capsys.readouterr().err
    assert "mean µs" in err and "real-time factor" in err


def test_one_version_everywhere(capsys):
    """The Cargo workspace's version reaches the package, the CLI and the C library."""
    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert rm.__version__ == version
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"remotemedia {version} (")
    if rm.native_available():
        assert native.library_version() == version
        assert f"native library {version}" in shown


def test_cli_runs_a_pipeline_of_named_inputs_from_one_file_each(tmp_path, capsys):
    a, b = np.linspace(-0.5, 0.5, 1600, dtype=np.float32), np.full((4800, 2), 0.25, np.float32)
    audiofile.write(tmp_path / "mic.wav", rm.Audio(a, 16000))
    audiofile.write(tmp_path / "far.wav", rm.Audio(b, 48000))
    manifest = tmp_path / "mix.json"
    manifest.write_text(json.dumps({
        "version": "1", "inputs": [{"name": "mic"}, {"name": "far"}], "nodes": [{"id": "mix", "node_type": "Mix"}],
        "connections": [{"from": "$mic", "to": "mix.in0"}, {"from": "$far", "to": "mix.in1"}]}))
    out = tmp_path / "out.wav"
    assert cli.main(["run", str(manifest), "--input", f"mic={tmp_path / 'mic.wav'}", "-i", f"far={tmp_path / 'far.wav'}",
                     "-o", str(out)]) == 0
    with audiofile.Reader(out) as r:
        mixed = np.concatenate([blk.samples for blk in r.blocks(16000)])
    assert len(mixed) == 1600 and abs(float(mixed[800]) - (a[800] + 0.25)) < 1e-3, "far converted to 16 kHz mono"
    assert cli.main(["run", str(manifest), "--input", str(tmp_path / "mic.wav")]) == 2
    assert "this pipeline's inputs are mic, far; give each as --input NAME=PATH" in capsys.readouterr().err
