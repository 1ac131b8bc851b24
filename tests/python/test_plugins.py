"""Native plugins: loading by path and by discovery, every rejection reason, clashes,
a panicking Rust plugin, plugin logs, a mixed pipeline, and the conformance check."""

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plugin_twins  # noqa: F401  (registers the Python twins of the example nodes)
import remotemedia as rm
from helpers import write_entry_point_package
from remotemedia._contract import NODES

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="plugins need the native library")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "target" / "plugins"
BIQUAD = EXAMPLES / "libbiquad.so"
GATE = EXAMPLES / "libremotemedia_noise_gate.so"
PANICKY = ROOT / "target" / "test-plugins" / "libremotemedia_test_panicky.so"


@pytest.fixture(scope="session", autouse=True)
def built_plugins():
    """Builds the example and test plugins (a no-op when they are up to date)."""
    subprocess.run([str(ROOT / "plugins" / "build.sh")], check=True)


def noise(frames: int, channels: int = 1, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((frames, channels)).astype(np.float32) * np.float32(scale)
    return x[:, 0].copy() if channels == 1 else x


def run_one(node_type: str, params: dict, audio: rm.Audio, runtime: str) -> np.ndarray:
    p = rm.Pipeline(runtime=runtime).add_node("n", node_type, **params)
    return np.concatenate([a.samples for a in p.run(audio)["n"]])


# ---- loading by path --------------------------------------------------------------------

def test_example_plugins_load_by_path_and_describe_themselves():
    biquad, gate = rm.load_plugin(BIQUAD), rm.load_plugin(GATE)
    assert (biquad["name"], biquad["version"], biquad["license"], biquad["abi"]) == ("biquad", "1.0.0", "Apache-2.0", "1.3")
    assert biquad["file"] == str(BIQUAD.resolve())
    [t] = biquad["node_types"]
    assert (t["node_type"], t["input_kinds"], t["output_kinds"], t["runtime"]) == ("Biquad", ["audio"], ["audio"], "native")
    assert set(t["params"]["properties"]) == {"type", "frequency_hz", "q", "gain_db"}
    assert gate["name"] == "noise-gate" and gate["node_types"][0]["node_type"] == "NoiseGate"
    assert rm.load_plugin(BIQUAD) == biquad, "loading the same file again is a no-op"
    listed = {p["name"] for p in rm.list_plugins()["plugins"]}
    assert {"biquad", "noise-gate"} <= listed


def test_plugin_nodes_run_natively_in_pipelines():
    rm.load_plugin(BIQUAD)
    p = rm.Pipeline().add_node("b", "Biquad", type="highpass", frequency_hz=200.0).add_node("g", "Gain", gain_db=-6.0)
    p.connect("b", "g")
    assert p.node_runtimes() == {"b": "native", "g": "native"}
    assert p._compile().describe()["nodes"][0]["plugin"] == "biquad"
    dc = np.ones(4800, np.float32)
    out = p.run(rm.Audio(dc, 16000))["g"][0].samples
    assert abs(out[-1]) < 1e-3, "a highpass removes DC"


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["lowpass", "highpass", "bandpass", "notch", "peaking"]),
       freq=st.floats(50.0, 7000.0), q=st.floats(0.3, 8.0), gain_db=st.floats(-24.0, 24.0),
       channels=st.integers(1, 2), chunks=st.lists(st.integers(0, 300), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_biquad_plugin_matches_its_python_twin(kind, freq, q, gain_db, channels, chunks, seed):
    rm.load_plugin(BIQUAD)
    params = {"type": kind, "frequency_hz": freq, "q": q, "gain_db": gain_db}
    outs = {}
    for runtime in ("native", "python"):
        p = rm.Pipeline(runtime=runtime).add_node("n", "Biquad", **params)
        with p.stream() as s:
            for i, frames in enumerate(chunks):
                s.push(rm.Audio(noise(frames, channels, seed + i), 16000))
            s.flush()
            items = s.pull(timeout=5.0)
        outs[runtime] = np.concatenate([a.samples for _, a in items]) if items else np.zeros(0, np.float32)
    np.testing.assert_allclose(outs["native"], outs["python"], rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(threshold=st.floats(-60.0, -6.0), floor=st.floats(-60.0, 0.0), attack=st.floats(0.1, 50.0),
       release=st.floats(1.0, 300.0), scale=st.floats(0.0, 1.0), frames=st.integers(0, 2000), seed=st.integers(0, 99))
def test_noise_gate_plugin_matches_its_python_twin(threshold, floor, attack, release, scale, frames, seed):
    rm.load_plugin(GATE)
    params = {"threshold_db": threshold, "floor_db": floor, "attack_ms": attack, "release_ms": release}
    audio = rm.Audio(noise(frames, 2, seed, scale), 16000)
    np.testing.assert_allclose(run_one("NoiseGate", params, audio, "native"), run_one("NoiseGate", params, audio, "python"),
                               rtol=1e-5, atol=1e-7)


# ---- a mixed pipeline -------------------------------------------------------------------

@rm.register_node
class SoftClip(rm.Node):
    """Python-only test node: tanh soft clipping."""

    node_type = "TestSoftClip"

    def __init__(self, drive: float = 1.0):
        self.drive = np.float32(drive)

    def process(self, audio):
        return rm.Audio(np.tanh(audio.samples * self.drive).astype(np.float32), audio.sample_rate)


def test_mixed_pipeline_native_plugin_python_native_matches_pure_python():
    rm.load_plugin(BIQUAD)
    m = {"version": "1",
         "nodes": [{"id": "gain", "node_type": "Gain", "params": {"gain_db": 6.0}},
                   {"id": "filter", "node_type": "Biquad", "params": {"type": "lowpass", "frequency_hz": 2000.0}},
                   {"id": "clip", "node_type": "TestSoftClip", "params": {"drive": 2.0}},
                   {"id": "to_i16", "node_type": "FormatConverter", "params": {"format": "i16"}}],
         "connections": [{"from": "gain", "to": "filter"}, {"from": "filter", "to": "clip"}, {"from": "clip", "to": "to_i16"}]}
    mixed = rm.Pipeline.from_manifest(m, runtime="native")
    assert mixed.node_runtimes() == {"gain": "native", "filter": "native", "clip": "python", "to_i16": "native"}
    assert mixed._compile().describe()["nodes"][1]["plugin"] == "biquad"
    pure = rm.Pipeline.from_manifest(m, runtime="python")
    assert set(pure.node_runtimes().values()) == {"python"}
    audio = rm.Audio(noise(3000, 1, seed=5, scale=0.5), 16000)
    got, want = mixed.run(audio)["to_i16"][0].samples, pure.run(audio)["to_i16"][0].samples
    assert got.dtype == want.dtype == np.int16 and len(got) == 3000
    assert np.abs(got.astype(np.int32) - want).max() <= 1


# ---- failures ---------------------------------------------------------------------------

def test_a_panicking_rust_plugin_node_is_a_node_error_and_is_poisoned():
    rm.load_plugin(PANICKY)
    p = rm.Pipeline().add_node("p", "Panicky", panic_frames=13)
    np.testing.assert_array_equal(p.run(rm.Audio(np.ones(10, np.float32), 16000))["p"][0].samples, np.ones(10))
    with pytest.raises(rm.NodeError, match="panicked: asked to panic on 13 frames") as e:
        p.run(rm.Audio(np.ones(13, np.float32), 16000))
    assert (e.value.node_id, e.value.operation) == ("p", "process")
    with pytest.raises(rm.NodeError, match="poisoned"):
        p.run(rm.Audio(np.ones(10, np.float32), 16000))
    fresh = rm.Pipeline().add_node("p", "Panicky", panic_frames=13)
    assert len(fresh.run(rm.Audio(np.ones(10, np.float32), 16000))["p"]) == 1, "other instances are unaffected"


def test_plugin_logs_reach_python_logging(caplog):
    rm.load_plugin(PANICKY)
    with caplog.at_level(logging.DEBUG, logger="remotemedia"):
        rm.Pipeline().add_node("p", "Panicky", panic_frames=99).run(rm.Audio(np.ones(4, np.float32), 16000))
    records = [r.getMessage() for r in caplog.records if "Panicky created" in r.getMessage()]
    assert records and "plugin=test-panicky" in records[0] and "remotemedia::plugin" in records[0]


def test_a_create_that_fails_is_a_plugin_error_naming_the_file(broken):
    lib = broken("CREATE_FAILS")
    rm.load_plugin(lib)
    with pytest.raises(rm.PluginError, match="this node never creates") as e:
        rm.Pipeline().add_node("x", "EchoCreateFails").run(rm.Audio(np.ones(4, np.float32), 16000))
    assert e.value.file == str(lib.resolve()) and "nodes[0].params" in str(e.value)
    assert e.value.path == "nodes[0].params"


def test_plugin_params_are_checked_against_the_declared_schema_like_built_in_ones(broken):
    """The same bad param gives the same ManifestError path on a built-in node and on a
    plugin node declaring the built-in's schema; what fits goes to the plugin's create."""
    schema = NODES["Resample"]["params"]
    rm.load_plugin(broken("GOOD", name="test-resample-schema", node_type="SchemaTwin", schema=schema))
    audio = rm.Audio(np.ones(8, np.float32), 16000)
    for bad, path in [({"target_rate": 0}, "nodes[0].params.target_rate"), ({"target_rate": "fast"}, "nodes[0].params.target_rate"),
                      ({"target_rate": 8000, "qualty": "high"}, "nodes[0].params.qualty"), ({}, "nodes[0].params"),
                      ({"target_rate": 8000, "quality": "best"}, "nodes[0].params.quality")]:
        paths = []
        for node_type in ("Resample", "SchemaTwin"):
            with pytest.raises(rm.ManifestError) as e:
                rm.Pipeline().add_node("n", node_type, **bad).run(audio)
            paths.append(e.value.path)
        assert paths == [path, path], (bad, paths)
    assert rm.Pipeline().add_node("n", "SchemaTwin", target_rate=8000).run(audio)["n"][0] == audio


def test_a_plugin_whose_schema_is_not_a_schema_is_rejected_at_load(broken):
    with pytest.raises(rm.PluginError, match="params_schema_json is not a supported JSON Schema: type: not a valid value"):
        rm.load_plugin(broken("GOOD", name="test-not-a-schema", node_type="NotASchema", schema={"type": 5}))
    with pytest.raises(rm.PluginError, match=r"properties.x.\$ref: keyword '\$ref' is outside the supported subset"):
        rm.load_plugin(broken("GOOD", name="test-outside-ref", node_type="OutsideRef",
                              schema={"properties": {"x": {"$ref": "file:///etc/passwd"}}}))


class Ranged(rm.Node):
    node_type = "TestRangedParams"
    params_schema = {"type": "object", "properties": {"level": {"type": "number", "minimum": 0, "maximum": 1}}}

    def __init__(self, level: float = 0.5):
        self.level = level

    def process(self, data):
        return data


@pytest.mark.parametrize("runtime", ["native", "python"])
def test_python_node_params_are_checked_against_their_schema_on_both_runtimes(runtime):
    rm.register_node(Ranged)
    with pytest.raises(rm.ManifestError) as e:
        rm.Pipeline(runtime=runtime).add_node("r", Ranged, level=3).run(rm.Audio(np.ones(4, np.float32), 16000))
    assert e.value.path == "nodes[0].params.level"


REJECTIONS = [
    ("MISSING_ENTRY", "missing entry symbol `remotemedia_plugin_entry`"),
    ("MAJOR_MISMATCH", "plugin ABI 2.3 is incompatible with this runtime's ABI 1.3 (major versions differ)"),
    ("NEWER_MINOR", "plugin ABI 1.4 is newer than this runtime's ABI 1.3; upgrade remotemedia"),
    ("UNKNOWN_FLAG", "invalid descriptor: extensions[0].flags has unknown bits 0x80"),
    ("NO_NAME", "invalid descriptor: name is NULL"),
    ("BAD_SCHEMA", "invalid descriptor: node_types[0]: node type 'EchoBadSchema': params_schema_json"),
    ("NO_PROCESS", "create, process and destroy are required"),
    ("RESERVED_SET", "invalid descriptor: reserved_2 is not NULL"),
    ("ENTRY_REFUSES", "entry point returned NULL"),
]


@pytest.mark.parametrize("flag,reason", REJECTIONS)
def test_each_rejection_names_the_file_and_the_reason_and_harms_nothing(broken, flag, reason):
    lib = broken(flag)
    with pytest.raises(rm.PluginError) as e:
        rm.load_plugin(lib)
    assert e.value.file == str(lib.resolve())
    assert reason in str(e.value)
    assert str(lib.resolve()) in str(e.value)
    rm.load_plugin(BIQUAD)
    assert rm.Pipeline().add_node("b", "Biquad").run(rm.Audio(np.ones(8, np.float32), 16000))["b"], "runtime still works"


def test_a_plugin_built_against_abi_minor_0_still_loads_and_runs(broken):
    info = rm.load_plugin(broken("OLD_MINOR"))
    assert info["abi"] == "1.0"
    audio = rm.Audio(np.ones(4, np.float32), 16000)
    assert rm.Pipeline().add_node("x", "EchoOldMinor").run(audio)["x"][0] == audio


def test_a_plugin_built_against_abi_minor_1_still_loads_with_its_flags(broken):
    info = rm.load_plugin(broken("MINOR1_EXTENSION"))
    assert info["abi"] == "1.1"
    assert info["node_types"][0]["prefers_isolation"] is True
    assert "caps" not in info["node_types"][0], "its node type is undeclared"
    audio = rm.Audio(np.ones((4, 2), np.int16), 44100)
    p = rm.Pipeline().add_node("x", "EchoMinor1Extension")
    assert p.run(audio)["x"][0] == audio, "accepts anything: nothing is inserted"
    assert not [n for n in p.plan()["nodes"] if n["inserted"]]


def test_a_plugin_that_declares_caps_gets_converters_before_it(broken):
    rm.load_plugin(broken("DECLARES_CAPS"))
    audio = rm.Audio((np.arange(4410 * 2, dtype=np.int16) % 100).reshape(-1, 2), 44100)
    p = rm.Pipeline().add_node("x", "EchoDeclaresCaps")
    out = p.run(audio)["x"]
    assert [n["node_type"] for n in p.plan()["nodes"] if n["inserted"]] == ["FormatConverter", "Downmix", "Resample"]
    assert all(a.samples.dtype == np.float32 and a.channels == 1 and a.sample_rate == 16000 for a in out)
    off = rm.Pipeline(auto_convert=False, input={"channels": 2}).add_node("x", "EchoDeclaresCaps")
    with pytest.raises(rm.ManifestError, match="auto_convert is off") as e:
        off.plan()
    assert e.value.path == "input"


def test_a_malformed_caps_declaration_refuses_the_plugin(broken):
    with pytest.raises(rm.PluginError, match=r"extensions\[0\]\.caps: caps\.input\.format"):
        rm.load_plugin(broken("BAD_CAPS"))


def test_a_node_type_may_prefer_isolation_and_the_manifest_decides(broken, caplog):
    info = rm.load_plugin(broken("PREFERS_ISOLATION"))
    assert info["node_types"][0]["prefers_isolation"] is True
    audio = rm.Audio(np.ones(4, np.float32), 16000)
    with caplog.at_level("WARNING", logger="remotemedia"):
        assert rm.Pipeline().add_node("x", "EchoPrefersIsolation").run(audio)["x"][0] == audio
    assert any("prefers to run in a process of its own" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="remotemedia"):
        p = rm.Pipeline().add_node("x", "EchoPrefersIsolation", isolation="process")
        assert p.run(audio)["x"][0] == audio
    assert not any("prefers" in r.getMessage() for r in caplog.records)


def test_a_file_that_is_not_a_shared_library_is_rejected(tmp_path):
    bogus = tmp_path / "libnotreally.so"
    bogus.write_text("not an ELF file")
    with pytest.raises(rm.PluginError, match="not a loadable shared library") as e:
        rm.load_plugin(bogus)
    assert e.value.file == str(bogus.resolve())
    with pytest.raises(rm.PluginError, match="cannot open"):
        rm.load_plugin(tmp_path / "missing.so")


def test_a_node_type_clash_names_both_plugins(broken):
    rm.load_plugin(BIQUAD)
    lib = broken("GOOD", name="clashing", node_type="Biquad")
    with pytest.raises(rm.PluginError) as e:
        rm.load_plugin(lib)
    text = str(e.value)
    assert "node type 'Biquad' of plugin 'clashing' clashes with plugin 'biquad'" in text
    assert str(BIQUAD.resolve()) in text and str(lib.resolve()) in text
    with pytest.raises(rm.PluginError, match="node type 'Gain' of plugin 'gain-clash' clashes with a built-in node type"):
        rm.load_plugin(broken("GOOD", name="gain-clash", node_type="Gain"))
    assert "clashing" not in {p["name"] for p in rm.list_plugins()["plugins"]}


def test_two_plugins_with_one_name_are_refused(broken):
    rm.load_plugin(broken("GOOD", name="twin-name", node_type="EchoOne"))
    with pytest.raises(rm.PluginError, match="a plugin named 'twin-name' is already loaded from"):
        rm.load_plugin(broken("GOOD", name="twin-name", node_type="EchoTwo"))


# ---- discovery, in fresh processes ----------------------------------------------------------

def run_python(code: str, cwd: Path, **env) -> str:
    """Runs ``code`` in a fresh interpreter that searches only the plugin path given in
    ``env`` (no user or system directories); returns its stdout."""
    full = {k: v for k, v in os.environ.items() if k != "REMOTEMEDIA_PLUGIN_PATH"}
    full.update({"REMOTEMEDIA_PLUGIN_SYSTEM_PATH": "", **env})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_discovery_loads_plugins_on_the_path_and_lists_rejections(tmp_path, broken):
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    for lib in (BIQUAD, GATE, broken("MAJOR_MISMATCH")):
        shutil.copy(lib, plugdir)
    (plugdir / "README.txt").write_text("not a plugin, not a .so: ignored")
    code = """
        import json, logging, numpy as np, remotemedia as rm
        logged = []
        handler = logging.Handler()
        handler.emit = lambda record: logged.append(record.getMessage())
        logging.getLogger("remotemedia").addHandler(handler)
        logging.getLogger("remotemedia").setLevel(logging.INFO)
        p = rm.Pipeline().add_node("b", "Biquad").add_node("g", "NoiseGate").connect("b", "g")
        out = p.run(rm.Audio(np.zeros(160, np.float32), 16000))
        print(json.dumps({"runtimes": p.node_runtimes(), "listing": rm.list_plugins(), "logged": logged}))
    """
    result = json.loads(run_python(code, tmp_path, REMOTEMEDIA_PLUGIN_PATH=f"{plugdir}:relative/dir"))
    assert result["runtimes"] == {"b": "native", "g": "native"}
    listing = result["listing"]
    assert sorted(p["name"] for p in listing["plugins"]) == ["biquad", "noise-gate"]
    rejected = {Path(r["file"]).name: r["reason"] for r in listing["rejected"]}
    assert "major versions differ" in rejected[broken("MAJOR_MISMATCH").name]
    assert "only absolute paths are searched" in rejected["dir"]
    assert listing["search_path"][0] == {"path": str(plugdir), "source": "REMOTEMEDIA_PLUGIN_PATH"}
    assert any("plugin rejected" in m and "major versions differ" in m for m in result["logged"]), result["logged"]
    assert any("plugin loaded" in m and "plugin=noise-gate" in m for m in result["logged"])


def test_nothing_loads_from_the_current_directory_unless_asked(tmp_path):
    shutil.copy(BIQUAD, tmp_path)
    code = """
        import json, remotemedia as rm
        print(json.dumps(rm.list_plugins()))
    """
    listing = json.loads(run_python(code, tmp_path))
    assert listing["plugins"] == [] and listing["rejected"] == []
    loaded = json.loads(run_python("import json, remotemedia as rm; print(json.dumps(rm.load_plugin('libbiquad.so')))", tmp_path))
    assert loaded["file"] == str((tmp_path / "libbiquad.so").resolve()), "an explicit relative path is taken from the cwd"


def test_entry_point_nodes_and_native_plugins_are_discovered_together(tmp_path):
    write_entry_point_package(tmp_path)
    code = """
        import json, sys, numpy as np, remotemedia as rm
        sys.path.insert(0, ".")
        p = rm.Pipeline().add_node("gate", "NoiseGate", threshold_db=-100.0, floor_db=0.0).add_node("h", "AcmeHalve")
        p.connect("gate", "h")
        out = p.run(rm.Audio(np.full(8, 0.5, np.float32), 16000))["h"][0].samples
        print(json.dumps({"runtimes": p.node_runtimes(), "out": out.tolist()}))
    """
    result = json.loads(run_python(code, tmp_path, REMOTEMEDIA_PLUGIN_PATH=str(EXAMPLES)))
    assert result["runtimes"] == {"gate": "native", "h": "python"}
    np.testing.assert_allclose(result["out"], 0.25, rtol=1e-6)


def test_plugin_nodes_run_concurrently_like_sequentially():
    rm.load_plugin(BIQUAD)
    rm.load_plugin(GATE)
    inputs = [rm.Audio(noise(2000, 2, seed), 16000) for seed in range(8)]

    def one(audio):
        p = rm.Pipeline().add_node("b", "Biquad", type="bandpass", frequency_hz=900.0).add_node("g", "NoiseGate")
        return p.connect("b", "g").run(audio)["g"][0].samples

    sequential = [one(a) for a in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(one, inputs))
    for s, c in zip(sequential, concurrent):
        np.testing.assert_array_equal(s, c)


def test_cli_lists_plugins(tmp_path):
    env = {**os.environ, "REMOTEMEDIA_PLUGIN_PATH": str(EXAMPLES), "REMOTEMEDIA_PLUGIN_SYSTEM_PATH": ""}
    done = subprocess.run([sys.executable, "-m", "remotemedia", "plugins"], env=env, capture_output=True, text=True, check=True)
    assert "biquad 1.0.0 (ABI 1.3, Apache-2.0)" in done.stdout and "NoiseGate" in done.stdout
    assert f"{EXAMPLES} (REMOTEMEDIA_PLUGIN_PATH)" in done.stdout
    nodes = subprocess.run([sys.executable, "-m", "remotemedia", "nodes"], env=env, capture_output=True, text=True, check=True)
    assert "Biquad           [native] from plugin biquad" in nodes.stdout


# ---- conformance ----------------------------------------------------------------------------

@pytest.mark.parametrize("lib", [BIQUAD, GATE], ids=["c-biquad", "rust-noise-gate"])
def test_example_plugins_pass_the_conformance_check(lib):
    report = rm.check_plugin(lib)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert report["passed"] and not failed, failed
    names = {c["check"] for c in report["checks"]}
    two_streams = "two streams do not share state (flush, reset, then a new stream)"
    assert {two_streams, "instances are independent", "destroy without processing"} <= names


def test_conformance_flags_a_plugin_whose_reset_does_not_forget(broken):
    report = rm.check_plugin(broken("STATEFUL_OUTPUT"))
    failed = {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert not report["passed"]
    assert "after flush and reset the output differs" in failed["two streams do not share state (flush, reset, then a new stream)"]


def test_conformance_probes_params_with_values_their_schema_forbids(broken):
    report = rm.check_plugin(broken("LAX_PARAMS"))
    failed = {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert not report["passed"]
    for probe in ("2 (over its maximum)", "-1 (under its minimum)", "a string", "an object"):
        assert failed[f"params.gain = {probe} rejected with a message"] == f"params.gain = {probe} was accepted"


@pytest.mark.parametrize("flag, signal", [("CRASH_ON_EMPTY", "SIGSEGV"), ("ABORT_ON_EMPTY", "SIGABRT")])
def test_conformance_names_where_a_plugin_crashed_and_keeps_the_other_checks(broken, flag, signal):
    report = rm.check_plugin(broken(flag))
    node_type = "Echo" + "".join(w.title() for w in flag.split("_"))
    assert not report["passed"] and report["crashed"] == signal
    assert report["at"] == {"node_type": node_type, "check": "F32 chunks of [0, 1, 7, 160, 480, 4097] frames, 1 channel(s)"}
    by_check = {c["check"]: c for c in report["checks"]}
    assert by_check["create with the schema's defaults"]["ok"] and by_check["flush without input"]["ok"]
    crashed = by_check[report["at"]["check"]]
    assert crashed["crashed"] and signal in crashed["detail"] and crashed["node_type"] == node_type
    assert by_check["memory stays flat over 200 calls"]["ok"], "checks after the crash still ran"


def test_conformance_reports_a_hang_within_the_per_call_limit(broken):
    started = time.monotonic()
    report = rm.check_plugin(broken("HANG_ON_EMPTY"), timeout=1)
    assert not report["passed"] and report["hung"] == 1
    assert report["at"]["node_type"] == "EchoHangOnEmpty" and report["at"]["check"].startswith("F32 chunks")
    hung = [c for c in report["checks"] if c.get("hung")]
    assert hung and all("no reply within 1000 ms" in c["detail"] for c in hung)
    assert time.monotonic() - started < 1.5 * len(hung) + 20, "each hang costs about the per-call limit"
    assert {c["check"]: c["ok"] for c in report["checks"]}["create with the schema's defaults"]
    with pytest.raises(rm.InvalidInputError, match="timeout must be"):
        rm.check_plugin(BIQUAD, timeout=float("nan"))


def test_conformance_flags_memory_growing_with_every_call(broken):
    report = rm.check_plugin(broken("LEAK_PER_CALL"))
    failed = {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert list(failed) == ["memory stays flat over 200 calls"], failed
    assert "memory grows with every call" in failed["memory stays flat over 200 calls"]
    biquad = {c["check"]: c for c in rm.check_plugin(BIQUAD)["checks"]}
    assert biquad["memory stays flat over 200 calls"]["ok"]


def test_conformance_json_reports_a_crash_while_loading(tmp_path):
    src = tmp_path / "entry.c"
    src.write_text('#include <stdlib.h>\nconst void *remotemedia_plugin_entry(const void *h) { (void)h; abort(); }\n')
    lib = tmp_path / "libcrashentry.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    done = subprocess.run([sys.executable, "-m", "remotemedia", "plugins", "check", "--json", str(lib)],
                          capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["crashed"] == "SIGABRT"
    assert report["at"] == {"node_type": None, "check": "load the plugin"}


def test_conformance_json_reports_a_load_error_as_json(tmp_path):
    junk = tmp_path / "libjunk.so"
    junk.write_bytes(b"not a library")
    done = subprocess.run([sys.executable, "-m", "remotemedia", "plugins", "check", "--json", str(junk)],
                          capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert done.returncode == 2 and report["passed"] is False and report["file"] == str(junk)
    assert "not a loadable shared library" in report["error"]


def test_conformance_cli_exit_status(broken):
    ok = subprocess.run([sys.executable, "-m", "remotemedia", "plugins", "check", str(BIQUAD)], capture_output=True, text=True)
    assert ok.returncode == 0 and "biquad: passed" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "remotemedia", "plugins", "check", str(broken("CREATE_FAILS"))],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "FAIL EchoCreateFails: create with the schema's defaults: this node never creates" in bad.stdout


# ---- source compatibility ------------------------------------------------------------------------

# How plugin authors wrote the descriptor against each earlier ABI minor (tests/plugins/versions.c).
# Left out on purpose: a positional descriptor as minor 1 and 2 laid it out (`EXT, {NULL, NULL,
# NULL}` after `unload`), which no layout can compile together with minor 0's positional
# `{NULL, NULL, NULL, NULL}` under -Wall -Wextra -Werror (docs/PLUGINS.md, "Versions").
SOURCE_STYLES = ["MINOR0_POSITIONAL", "MINOR0_DESIGNATED", "MINOR1_DESIGNATED", "MINOR2_DESIGNATED",
                 "MINOR2_POSITIONAL_EXTENSION", "MINOR3_PORTS"]


@pytest.mark.parametrize("std", ["c99", "c11"])
@pytest.mark.parametrize("style", SOURCE_STYLES)
def test_a_plugin_source_of_every_earlier_minor_compiles_with_werror_and_runs(tmp_path, style, std):
    node_type = "Halve" + "".join(w.title() for w in style.split("_")) + std.title()
    lib = tmp_path / f"lib{node_type}.so"
    subprocess.run(["cc", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-fvisibility=hidden",
                    f"-I{ROOT / 'include'}", f"-D{style}", f'-DNAME="versions-{node_type.lower()}"',
                    f'-DNODE_TYPE="{node_type}"', str(ROOT / "tests/plugins/versions.c"), "-o", str(lib)],
                   check=True, capture_output=True)
    loaded = rm.load_plugin(lib)
    built_against = int(style[5])
    assert loaded["abi"] == f"1.{built_against}", "it stands for a binary built against that minor"
    if style == "MINOR3_PORTS":
        return  # its own test below
    audio = rm.Audio(np.linspace(-1, 1, 320, dtype=np.float32), 16000)
    p = rm.Pipeline().add_node("h", node_type)
    assert np.array_equal(p.run(audio)["h"][0].samples, audio.samples * 0.5)
    declared = loaded["node_types"][0].get("caps")
    assert (declared is not None) == (built_against >= 2), "minor 2's caps are read, older minors have none"


def test_a_minor_3_plugin_has_two_input_ports_configure_and_latency(tmp_path):
    lib = tmp_path / "libports.so"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-fvisibility=hidden",
                    f"-I{ROOT / 'include'}", "-DMINOR3_PORTS", '-DNAME="versions-ports"', '-DNODE_TYPE="PortTag"',
                    str(ROOT / "tests/plugins/versions.c"), "-o", str(lib)], check=True, capture_output=True)
    assert rm.load_plugin(lib)["abi"] == "1.3"
    p = rm.Pipeline.from_manifest({"version": "1", "inputs": [{"name": "a"}, {"name": "b"}],
                                   "nodes": [{"id": "t", "node_type": "PortTag"}],
                                   "connections": [{"from": "$a", "to": "t.main"}, {"from": "$b", "to": "t.side"}]})
    x = rm.Audio(np.zeros(4, np.float32), 16000)
    assert p.run({"b": x, "a": x})["t"] == [{"port": 1, "configured": 2}, {"port": 0, "configured": 2}]
    assert p.plan()["nodes"][0]["latency_ms"] == pytest.approx(7 * 1000 / 16000), "its latency callback"
    with pytest.raises(rm.ManifestError, match=r"has no input port 'in'; did you mean 'main'\?; ports: main, side"):
        rm.Pipeline.from_manifest({"version": "1", "nodes": [{"id": "s", "node_type": "Gain"}, {"id": "t", "node_type": "PortTag"}],
                                   "connections": [{"from": "s", "to": "t.in"}]}).run(x)


# ---- the author's guide -----------------------------------------------------------------------

def test_the_c_plugin_in_the_guide_builds_with_only_the_header_and_works(tmp_path):
    guide = (ROOT / "docs" / "PLUGINS.md").read_text()
    source = guide.split("```c\n", 1)[1].split("```", 1)[0]
    (tmp_path / "dcblock.c").write_text(source)
    lib = tmp_path / "libdcblock.so"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared", "-fvisibility=hidden",
                    f"-I{ROOT / 'include'}", str(tmp_path / "dcblock.c"), "-o", str(lib)], check=True)
    report = rm.check_plugin(lib)
    assert report["passed"], [c for c in report["checks"] if not c["ok"]]
    rm.load_plugin(lib)
    offset = np.full(16000, 0.25, np.float32)
    out = rm.Pipeline().add_node("dc", "DcBlock", r=0.99).run(rm.Audio(offset, 16000))["dc"][0].samples
    assert out[0] == pytest.approx(0.25) and abs(out[-1]) < 1e-4, "the offset is removed"
    with pytest.raises(rm.ManifestError) as e:  # the runtime checks params against the declared schema
        rm.Pipeline().add_node("dc", "DcBlock", r=2.0).run(rm.Audio(offset, 16000))
    assert e.value.path == "nodes[0].params.r"
    p = rm.Pipeline().add_node("dc", "DcBlock")  # its declared caps: int16 gets a converter first
    assert p.run(rm.Audio(np.full(160, 8192, np.int16), 16000))["dc"][0].samples.dtype == np.float32
    assert [n["id"] for n in p.plan()["nodes"] if n["inserted"]] == ["input→dc.to_f32"]
