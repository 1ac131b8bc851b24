"""VAD engine "silero": both runtimes against silero on onnxruntime (the same model file),
streaming state, errors at validation, and weights shared across sessions."""

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from helpers import behind_opaque, pyannote_sample
from remotemedia.model import silero, silero_package_model
from test_vad import voiced_bursts

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from vad_dataset import SENTENCES, VOICES, speak  # noqa: E402

MODEL = silero_package_model()
pytestmark = pytest.mark.skipif(MODEL is None, reason="needs the silero-vad package (pip install --no-deps silero-vad)")
ort = pytest.importorskip("onnxruntime")
RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]


def manifest(**params):
    return {"version": "1", "nodes": [{"id": "v", "node_type": "VAD", "params": {"engine": "silero", **params}}]}


def reference(x: np.ndarray) -> np.ndarray:
    """Per-window probabilities of silero on onnxruntime, fed as silero's own wrapper
    feeds it: 512 new samples after the previous window's last 64, the tail zero-padded."""
    session = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    padded = np.concatenate([x, np.zeros(-len(x) % 512, np.float32)])
    windows = padded.reshape(-1, 512)
    context = np.concatenate([np.zeros((1, 64), np.float32), windows[:-1, -64:]])
    zeros = np.zeros((1, 1, 128), np.float32)
    return session.run(None, {"input": np.concatenate([context, windows], axis=1), "h": zeros, "c": zeros})[0]


def scores(events) -> np.ndarray:
    return np.concatenate([e["score"] for e in events]) if events else np.zeros(0)


def streamed(pipeline, x, sizes):
    out, at = [], 0
    with pipeline.stream(capacity=1024) as s:
        for size in sizes:
            if at >= len(x):
                break
            s.push(rm.Audio(x[at:at + size], 16000))
            at += size
            out += s.pull()
        if at < len(x):
            s.push(rm.Audio(x[at:], 16000))
        s.flush()
        out += s.pull(timeout=5)
    return out


@functools.cache
def spoken(seed: int, seconds: float) -> np.ndarray:
    """Two espeak-ng utterances with pauses in light noise (voiced bursts without espeak-ng)."""
    if shutil.which("espeak-ng") is None:
        return voiced_bursts(seed, rate=16000, seconds=seconds, snr_db=10)[0]
    rng = np.random.default_rng(seed)
    x = 0.003 * rng.standard_normal(int(16000 * seconds))
    at = int(rng.uniform(0.2, 0.6) * 16000)
    for i in range(2):
        u = speak(SENTENCES[(seed + i) % len(SENTENCES)], VOICES[(seed + i) % len(VOICES)], 160, 50)
        u = 0.5 * u / np.abs(u).max()
        u = u[:max(0, len(x) - at)]
        x[at:at + len(u)] += u
        at += len(u) + int(rng.uniform(0.4, 1.0) * 16000)
    return x.astype(np.float32)


def signal(kind: str, seed: int, seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    if kind == "speech":
        return spoken(seed % 8, seconds)
    if kind == "noise":
        return (0.1 * rng.standard_normal(n)).astype(np.float32)
    return np.zeros(n, np.float32)


@pytest.mark.parametrize("runtime", RUNTIMES)
@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["speech", "noise", "silence"]), seed=st.integers(0, 10**6),
       sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=40), extra=st.integers(0, 511))
def test_window_probabilities_match_onnxruntime_over_any_chunking(runtime, kind, seed, sizes, extra):
    x = signal(kind, seed)[:16000 * 2 + extra]
    events = streamed(rm.Pipeline.from_manifest(manifest(), runtime=runtime), x, sizes)
    frames = [v for port, v in events if port == "v"]
    got = scores(frames)
    want = reference(x)
    assert len(got) == len(want) == -(-len(x) // 512), "one score per window, the tail included"
    assert np.abs(got - want).max() < 1e-3
    assert all(f["frame_ms"] == 32 for f in frames)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_streams_carry_state_and_each_stream_starts_fresh(runtime):
    x = signal("speech", 7)
    p = rm.Pipeline.from_manifest(manifest(gate=True), runtime=runtime)
    one_shot = p.run(rm.Audio(x, 16000))
    first = streamed(p, x, [320] * 200)
    second = streamed(p, x, [1000] * 100)
    for events in (first, second):
        assert [v for port, v in events if port == "v.segments"] == one_shot["v.segments"]
        np.testing.assert_array_equal(scores([v for port, v in events if port == "v"]), scores(one_shot["v"]))
    assert one_shot["v.segments"], "the bursts were found"
    gated = np.concatenate([a.samples for a in one_shot["v.audio"]])
    assert 0 < len(gated) < len(x)


def test_the_runtimes_agree_on_events(tmp_path):
    if "native" not in RUNTIMES:
        pytest.skip("needs the native runtime")
    x = signal("speech", 11, seconds=6)
    native = rm.Pipeline.from_manifest(manifest(), runtime="native").run(rm.Audio(x, 16000))
    python = rm.Pipeline.from_manifest(manifest(), runtime="python").run(rm.Audio(x, 16000))
    assert native["v.segments"] == python["v.segments"]
    np.testing.assert_allclose(scores(native["v"]), scores(python["v"]), atol=1e-4)


def wrong_model(path):
    """A valid ONNX file of another model: one Relu."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), path)
    return path


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_models_are_manifest_errors_at_validation(runtime, tmp_path):
    (tmp_path / "noise.onnx").write_bytes(os.urandom(4096))
    (tmp_path / "empty.onnx").write_bytes(b"")
    cases = {
        str(tmp_path / "missing.onnx"): "cannot open",
        str(tmp_path): "not a file",
        str(tmp_path / "noise.onnx"): "",
        str(tmp_path / "empty.onnx"): "",
        wrong_model(str(tmp_path / "relu.onnx")): "not a silero VAD model",
    }
    for path, words in cases.items():
        with pytest.raises(rm.ManifestError, match=words) as e:
            rm.Pipeline.from_manifest(manifest(model_path=path), runtime=runtime).run(rm.Audio(np.zeros(512, np.float32), 16000))
        assert e.value.path == "nodes[0].params.model_path", (path, str(e.value))
    for params, where in [({"frame_ms": 30}, "frame_ms"), ({"engine": "spectral", "model_path": MODEL}, "model_path")]:
        with pytest.raises(rm.ManifestError) as e:
            rm.Pipeline.from_manifest(manifest(**params), runtime=runtime).run(rm.Audio(np.zeros(512, np.float32), 16000))
        assert e.value.path == f"nodes[0].params.{where}"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_other_rates_are_resampled_or_a_clear_node_error(runtime):
    audio = rm.Audio(np.zeros(4800, np.float32), 48000)
    p = rm.Pipeline.from_manifest(manifest(), runtime=runtime)
    p.run(audio)
    assert [(n["node_type"], n.get("params")) for n in p.plan()["nodes"] if n["inserted"]] == [
        ("Resample", {"target_rate": 16000})]
    with pytest.raises(rm.NodeError, match="16000 Hz, got 48000"):
        behind_opaque(runtime, "v", "VAD", manifest()["nodes"][0]["params"]).run(audio)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_level_floor_keeps_quiet_frames_out_when_asked(runtime):
    x = signal("speech", 3) * 10 ** (-60 / 20)  # speech at about -75 dBFS
    floored = rm.Pipeline.from_manifest(manifest(threshold=0.0, min_level_dbfs=-60), runtime=runtime).run(rm.Audio(x, 16000))
    assert not floored.get("v.segments") and not np.concatenate([e["speech"] for e in floored["v"]]).any()
    default = rm.Pipeline.from_manifest(manifest(threshold=0.0), runtime=runtime)
    assert default.run(rm.Audio(x, 16000))["v.segments"], "silero has no floor by default: the floor is what kept them out"


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("level_db", [-90, -70, -50, -40])
@pytest.mark.parametrize("kind", ["white", "pink", "hum"])
def test_quiet_non_speech_is_not_speech_without_a_floor(runtime, level_db, kind):
    """Why silero's default has no level floor: it does not call quiet noise or hum
    speech by itself (a quiet lead-in included)."""
    rng = np.random.default_rng(level_db + 200)
    n = 16000 * 3
    if kind == "white":
        z = rng.standard_normal(n)
    elif kind == "pink":
        f = np.fft.rfft(rng.standard_normal(n))
        z = np.fft.irfft(f / np.sqrt(np.arange(1, len(f) + 1)), n)
    else:
        t = np.arange(n) / 16000
        z = np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
    z = (z / np.sqrt(np.mean(z ** 2)) * 10 ** (level_db / 20)).astype(np.float32)
    out = rm.Pipeline.from_manifest(manifest(), runtime=runtime).run(rm.Audio(z, 16000))
    assert not np.concatenate([e["speech"] for e in out["v"]]).any() and not out.get("v.segments")


@pytest.mark.skipif(pyannote_sample() is None, reason="needs the pyannote.audio wheel's sample (pip install --no-deps pyannote.audio)")
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("gain_db", [0, -10, -20])
def test_defaults_keep_telephone_speech_as_silero_on_onnxruntime_does(runtime, gain_db):
    """Issue 30, item 6: with its defaults the silero engine reaches silero on
    onnxruntime's F1 on a real telephone call, at its level and 10 and 20 dB quieter (a
    -60 dBFS floor cost 0.03 to 0.17 of F1 there)."""
    import soundfile as sf
    wav, rttm = pyannote_sample()
    x, rate = sf.read(str(wav), dtype="float32")
    x = (x * 10 ** (gain_db / 20)).astype(np.float32)
    n = len(x) // 512
    truth = np.zeros(n, bool)
    for line in rttm.read_text().splitlines():
        f = line.split()
        start, length = float(f[3]), float(f[4])
        truth[int(start * rate / 512):int((start + length) * rate / 512) + 1] = True
    truth = truth[:n]

    def f1(speech):
        speech = np.asarray(speech[:n], bool)
        tp = (speech & truth).sum()
        precision, recall = tp / max(speech.sum(), 1), tp / max(truth.sum(), 1)
        return 2 * precision * recall / (precision + recall)

    ours = np.concatenate([e["speech"] for e in rm.Pipeline.from_manifest(manifest(), runtime=runtime).run(rm.Audio(x, rate))["v"]])
    theirs = np.asarray(reference(x)).reshape(-1) > 0.5
    assert f1(ours) >= f1(theirs) - 0.005, (f1(ours), f1(theirs))


def test_python_runtime_loads_a_model_once():
    assert silero(MODEL) is silero(MODEL)


MANY_SESSIONS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import remotemedia as rm
    from test_silero import signal

    def rss_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    m = {"version": "1", "nodes": [{"id": "v", "node_type": "VAD", "params": {"engine": "silero"}}]}
    signals = [signal("speech", seed, seconds=1.0) for seed in range(100)]
    # a first chunk of two windows (its frames event shows the node ran), then 30 ms chunks
    chunks = [[x[:1024]] + [x[i:i + 480] for i in range(1024, len(x), 480)] for x in signals]
    def session(c):
        s = rm.Pipeline.from_manifest(m, runtime="native").stream(capacity=4096)
        s.push(rm.Audio(c[0], 16000))
        first = s.pull(timeout=10)
        assert first, "the first chunk's frames event"
        return s, first

    streams = [session(chunks[0])]
    rss_first = rss_kb()
    streams += [session(c) for c in chunks[1:]]
    rss_hundred = rss_kb()
    for step in range(1, len(chunks[0])):
        for (s, _), c in zip(streams, chunks):
            s.push(rm.Audio(c[step], 16000))
    results = []
    for s, pulled in streams:
        s.flush()
        results.append([v["score"] for port, v in pulled + s.pull(timeout=5) if port == "v"])
    one = rm.Pipeline.from_manifest(m, runtime="native")
    sequential = [one.run(rm.Audio(x, 16000))["v"] for x in signals]
    same = all(np.concatenate([[]] + got).tolist() == np.concatenate([[]] + [e["score"] for e in want]).tolist()
               for got, want in zip(results, sequential))
    print(json.dumps({"added_kb": rss_hundred - rss_first, "same": same}))
""")


def test_hundred_sessions_share_the_weights_and_match_sequential_runs():
    if "native" not in RUNTIMES:
        pytest.skip("needs the native runtime")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", MANY_SESSIONS], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["same"], "concurrent sessions gave other scores than sequential runs"
    assert result["added_kb"] <= 2048, f"99 more sessions added {result['added_kb']} KiB"
