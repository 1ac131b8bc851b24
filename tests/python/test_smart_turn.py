"""SmartTurn (Smart Turn v3.2) against pipecat's own path: its numpy features and the
model on onnxruntime, both from the installed pipecat-ai wheel; the native int8
forward on every kernel this CPU has; the turn rules over a recorded conversation."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import remotemedia as rm
from conftest import RUNTIMES
from helpers import Opaque, pyannote_sample
from remotemedia.model import smart_turn_package_model

MODEL = smart_turn_package_model()
SAMPLE = pyannote_sample()
pytestmark = [
    pytest.mark.skipif(MODEL is None, reason="needs pipecat-ai's model (pip install --no-deps pipecat-ai)"),
    pytest.mark.skipif(SAMPLE is None, reason="needs the pyannote.audio wheel's sample (pip install --no-deps pyannote.audio)"),
]
RATE = 16000


class Pipecat:
    """pipecat's end-of-turn path as its LocalSmartTurnAnalyzerV3 runs it: the last 8 s,
    front-padded with zeros; its numpy Whisper features; the model on onnxruntime, one
    thread. Its feature module is loaded from the wheel by path (importing pipecat
    needs its many dependencies)."""

    def __init__(self, model: str = MODEL):
        import onnxruntime
        path = Path(MODEL).parents[1] / "_whisper_features.py"
        spec = importlib.util.spec_from_file_location("pipecat_whisper_features", path)
        self.features_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.features_module)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def features(self, clip: np.ndarray) -> np.ndarray:
        clip = clip[-8 * RATE:]
        return self.features_module.compute_whisper_log_mel_features(np.pad(clip, (8 * RATE - len(clip), 0)))

    def probability(self, clip: np.ndarray) -> float:
        return float(self.session.run(None, {"input_features": self.features(clip)[None]})[0][0, 0])


@pytest.fixture(scope="module")
def pipecat():
    return Pipecat()


def recording() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The telephone call and its utterances (start, end) in seconds."""
    wav, rttm = SAMPLE
    x, rate = sf.read(wav, dtype="float32")
    assert rate == RATE
    turns = [(float(f[3]), float(f[3]) + float(f[4])) for f in (line.split() for line in rttm.read_text().splitlines()) if f]
    return x, turns


def noisy(x: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """``x`` in noise: white at 10 dB SNR, or brown (integrated white) at 5 dB."""
    if kind == "clean":
        return x
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(x))
    snr_db = 10
    if kind == "brown":
        n, snr_db = np.cumsum(n) - np.convolve(np.cumsum(n), np.ones(801) / 801, mode="same"), 5
    gain = np.sqrt(np.mean(x ** 2) / np.mean(n ** 2)) * 10 ** (-snr_db / 20)
    return (x + gain * n).astype(np.float32)


def clips():
    """At least 200 clips: each utterance cut at its end and at a quarter, half and three
    quarters of it, from 8 s and from 3 s before the cut, clean and in two noises."""
    x, turns = recording()
    out = []
    for kind in ("clean", "white", "brown"):
        y = noisy(x, kind, seed=len(out))
        for start, end in turns:
            for frac in (1.0, 0.25, 0.5, 0.75):
                cut = int((start + frac * (end - start)) * RATE)
                for back in (8, 3):
                    out.append((f"{kind}-{start}-{frac}-{back}", y[max(0, cut - back * RATE):cut]))
    return out


def one_shot(clip: np.ndarray, runtime: str = "native", **params) -> dict:
    out = rm.Pipeline(runtime=runtime).add_node("t", "SmartTurn", **params).run(rm.Audio(clip, RATE))["t"]
    assert len(out) == 1, out
    return out[0]


def test_python_features_equal_pipecats_within_1e_4(pipecat):
    from remotemedia.nodes.turn import log_mel
    for _, clip in clips()[::20]:
        np.testing.assert_allclose(log_mel(clip), pipecat.features(clip), atol=1e-4, rtol=0)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_features_into_onnxruntime_give_pipecats_probability(runtime, pipecat):
    """engine "onnxruntime" runs the runtime's own features into the same model file on
    onnxruntime. The quantized model turns a feature one code off into a probability
    0.1 off, so equal probabilities mean the features round to pipecat's codes."""
    for _, clip in clips()[::6]:
        got = one_shot(clip, runtime, engine="onnxruntime")["probability"]
        assert got == pytest.approx(pipecat.probability(clip), abs=1e-6)


def test_native_forward_agrees_with_pipecat_on_recorded_speech(pipecat):
    """The int8 forward against pipecat's own path on 240 clips. (onnxruntime itself,
    running this file unfused, differs from its fused kernels by up to 0.28 on these
    clips; the forward repeats the fused kernels' arithmetic and gets most clips to the
    last bit.)"""
    cases = clips()
    assert len(cases) >= 200
    diffs, same = [], 0
    for _, clip in cases:
        ours, theirs = one_shot(clip, engine="native")["probability"], pipecat.probability(clip)
        diffs.append(abs(ours - theirs))
        same += (ours > 0.5) == (theirs > 0.5)
    diffs = np.array(diffs)
    worst = int(np.argmax(diffs))
    assert same >= 0.98 * len(cases)
    assert (diffs <= 0.02).mean() >= 0.97, f"{cases[worst][0]}: differs by {diffs[worst]:.4f}"
    assert diffs.max() <= 0.1, f"{cases[worst][0]}: differs by {diffs[worst]:.4f}"
    assert (diffs < 1e-6).mean() >= 0.8


def test_every_exact_int8_kernel_gives_the_same_probabilities(monkeypatch):
    """Each kernel this CPU has (REMOTEMEDIA_INT8_KERNEL picks one at load). The VNNI
    kernels sum exactly, as the portable one does, and equal it bit for bit. The avx2
    kernel sums the weights' products in saturating pairs, as onnxruntime does on a CPU
    without VNNI, and differs from the exact sums as onnxruntime there differs from
    onnxruntime here (the test below checks it against onnxruntime on such a CPU)."""
    cases = [clip for _, clip in clips()[::20]]
    results = {}
    for kernel in ("portable", "avx2", "avx-vnni", "avx512-vnni"):
        monkeypatch.setenv("REMOTEMEDIA_INT8_KERNEL", kernel)
        try:
            results[kernel] = [one_shot(c, engine="native")["probability"] for c in cases]
        except rm.ManifestError as e:
            assert "this CPU runs" in str(e)
    assert "portable" in results
    if os.uname().machine == "x86_64":
        assert "avx2" in results, "an x86-64 CPU this project supports has AVX2"
        assert results["avx2"] != results["portable"], "saturated pairs change some probabilities"
    for kernel, probabilities in results.items():
        if kernel != "avx2":
            assert probabilities == results["portable"], kernel


VALGRIND_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_smart_turn import Pipecat, one_shot
pipecat = Pipecat()
for clip in np.load(sys.argv[2]):
    print(json.dumps([pipecat.probability(clip), one_shot(clip, engine="native")["probability"]]), flush=True)
"""


@pytest.mark.skipif(shutil.which("valgrind") is None or os.uname().machine != "x86_64",
                    reason="needs valgrind on x86-64")
def test_on_a_cpu_without_vnni_native_equals_onnxruntime_there(tmp_path):
    """valgrind shows a program a CPU with AVX2 and without AVX-512, so both engines take
    their AVX2 paths: onnxruntime multiplies u8 × s8 weights with vpmaddubsw, whose pair
    sums saturate (a probability 0.24 with VNNI is 0.60 there on one clip of the call),
    and the native forward repeats that on its avx2 kernel. Pipecat's own path on such a
    machine is the reference."""
    cases = [clip for name, clip in clips()[::40] if name.endswith("-8")][:5]
    cases.append(recording()[0][5 * RATE:8 * RATE])  # the clip named above
    np.save(tmp_path / "clips.npy", np.stack([np.pad(c, (8 * RATE - len(c), 0)) for c in cases]))
    env = {**os.environ, "REMOTEMEDIA_INT8_KERNEL": ""}
    # sys.executable is the interpreter itself (a launcher script would run it outside valgrind)
    out = subprocess.run(["valgrind", "--tool=none", "-q", sys.executable, "-c", VALGRIND_SCRIPT,
                          str(Path(__file__).parent), str(tmp_path / "clips.npy")],
                         capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    pairs = np.array([json.loads(line) for line in out.stdout.splitlines()])
    assert len(pairs) == len(cases), out.stdout
    diffs = np.abs(pairs[:, 0] - pairs[:, 1])
    # the bounds of the parity test above (21 of 24 clips to the last bit, measured)
    assert (diffs < 1e-6).sum() >= len(cases) // 2 and diffs.max() <= 0.02, pairs
    assert ((pairs[:, 0] > 0.5) == (pairs[:, 1] > 0.5)).all(), pairs


OLDER_MODELS = Path(__file__).parents[2] / "target" / "pypi-models"
OLDER = {"v3.0": OLDER_MODELS / "pipecat-0.0.92" / "pipecat/audio/turn/smart_turn/data/smart-turn-v3.0.onnx",
         "v3.1": OLDER_MODELS / "pipecat-0.0.98" / "pipecat/audio/turn/smart_turn/data/smart-turn-v3.1-cpu.onnx"}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("version", sorted(OLDER))
def test_older_smart_turn_models_run_as_pipecat_ran_them(version, runtime):
    """Smart Turn v3.0 and v3.1 as pipecat-ai 0.0.92 and 0.0.98 ship them (make develop
    installs those wheels under target/): engine auto agrees with pipecat's path on that
    file (today's pipecat features: those wheels computed them with transformers'
    WhisperFeatureExtractor, which _whisper_features.py replaced). The native forward reads v3.1's graph; v3.0 spells GELU and the
    attention otherwise, so native refuses it, naming the engine that runs it."""
    path = OLDER[version]
    if not path.is_file():
        pytest.skip(f"needs {path} (make develop installs it)")
    theirs = Pipecat(str(path))
    pipeline = rm.Pipeline(runtime=runtime).add_node("t", "SmartTurn", model_path=str(path))
    cases = clips()[::12]
    diffs = np.array([abs(pipeline.run(rm.Audio(c, RATE))["t"][0]["probability"] - theirs.probability(c)) for _, c in cases])
    assert (diffs <= 0.02).mean() >= 0.95 and diffs.max() <= 0.1, diffs
    def native():
        return rm.Pipeline(runtime=runtime).add_node("t", "SmartTurn", engine="native", model_path=str(path)).run(
            rm.Audio(cases[0][1], RATE))
    if version == "v3.0" and runtime == "native":
        with pytest.raises(rm.ManifestError, match=r"nodes\[0\]\.params\.model_path.*engine \"onnxruntime\" runs others"):
            native()
    else:
        assert 0 <= native()["t"][0]["probability"] <= 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_streaming_judges_each_end_of_speech_as_its_clip_alone(runtime):
    """silero VAD → SmartTurn over the call, fed in 20 ms chunks: one decision per end of
    speech; each equals a one-shot evaluation of the audio it names."""
    x, _ = recording()
    manifest = json.loads((Path(__file__).parents[2] / "examples" / "turn_pipeline.json").read_text())
    pipeline = rm.Pipeline.from_manifest(manifest, runtime=runtime)
    events = []
    with pipeline.stream() as s:
        for i in range(0, len(x), 320):
            s.push(rm.Audio(x[i:i + 320], RATE))
            events += [item for key, item in s.pull() if key == "turn"]
        s.flush()
        events += [item for key, item in s.pull() if key == "turn"]
    judged = [e for e in events if not e["timeout"]]
    ends = rm.Pipeline.from_manifest(manifest, runtime=runtime).run(rm.Audio(x, RATE))["vad.segments"]
    assert len(judged) >= len(ends) - 1 and judged, (events, ends)
    for e in judged:
        clip = x[round(e["start"] * RATE):round(e["end"] * RATE)]
        alone = one_shot(clip, runtime)
        assert alone["probability"] == pytest.approx(e["probability"], abs=1e-6)
        assert e["end_of_turn"] == (e["probability"] > 0.5)
        assert e["end"] - e["start"] <= 8.0 + 1e-9


class Script(rm.Node):
    """Emits the next of its scripted VAD frames events for each chunk it gets."""

    node_type = "TurnScript"

    def __init__(self, events: list):
        self.events = list(events)

    def process(self, data):
        return self.events.pop(0) if self.events else None


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_turn_rules(runtime):
    """Scripted VAD frames: speech opens a turn from pre_speech_ms before it, its end is
    judged once the audio is in (not before), an incomplete turn is judged again at its
    next end and stop_s of silence closes it as a timeout; a stream starts fresh after
    flush."""
    x, _ = recording()
    def frames(start_s, flags):
        return {"start": start_s, "frame_ms": 100, "speech": flags}
    script = [frames(0.0, [False] * 10 + [True] * 10 + [False]),  # speech 1.0 .. 2.0
              None, frames(2.1, [True] * 5 + [False]),  # speech again 2.1 .. 2.6, the same turn
              frames(2.7, [False] * 10)]  # silence to 3.7: over stop_s after 2.6
    p = (rm.Pipeline(runtime=runtime).add_node("src", Opaque).add_node("s", Script, events=script)
         .add_node("t", "SmartTurn", stop_s=1.0, threshold=1.0)
         .connect("src", "s").connect("src", "t.in").connect("s", "t.vad"))
    cuts = [0, 16000, 40000, 80000, 81600]
    with p.stream() as s:
        s.push(rm.Audio(x[cuts[0]:cuts[1]], RATE))
        assert s.pull() == []  # the audio up to 2.0 s has not come
        s.push(rm.Audio(x[cuts[1]:cuts[2]], RATE))
        [(_, first)] = s.pull()
        assert (first["start"], first["end"], first["end_of_turn"], first["timeout"]) == (0.5, 2.0, False, False)
        s.push(rm.Audio(x[cuts[2]:cuts[3]], RATE))
        [(_, second)] = s.pull()
        assert (second["start"], second["end"], second["end_of_turn"]) == (0.5, 2.6, False)
        s.push(rm.Audio(x[cuts[3]:cuts[4]], RATE))
        [(_, timeout)] = s.pull()
        assert timeout == {"start": 0.5, "end": 2.6, "probability": None, "end_of_turn": True, "timeout": True}
        s.flush()
        assert s.pull() == []  # the turn was closed: nothing left to judge
        # the next stream starts fresh: the script starts over, the first end of speech
        # is judged from its turn's start again
        s.push(rm.Audio(x[cuts[0]:cuts[2]], RATE))
        [(_, again)] = s.pull()
        assert (again["start"], again["end"], again["probability"]) == (0.5, 2.0, first["probability"])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_models_and_inputs_are_clear_errors(runtime, tmp_path):
    from remotemedia.model import silero_package_model
    bad = {"missing": str(tmp_path / "nope.onnx"), "not onnx": __file__}
    if silero_package_model():
        bad["another model"] = silero_package_model()
    for engine in ("native", "onnxruntime"):
        for why, path in bad.items():
            with pytest.raises(rm.ManifestError) as e:
                rm.Pipeline(runtime=runtime).add_node("t", "SmartTurn", model_path=path, engine=engine).run(
                    rm.Audio(np.zeros(RATE, np.float32), RATE))
            assert e.value.path == "nodes[0].params.model_path", (engine, why, str(e.value))
    hostile = [{"start": "x"}, {"start": 1e308, "frame_ms": 32, "speech": [True]},
               {"start": -1, "frame_ms": 32, "speech": [True]}, {"start": 0, "frame_ms": 0, "speech": [True]},
               {"start": 0, "frame_ms": 32, "speech": [1]}, {"start": 0, "frame_ms": 32}, [1, 2], "speech"]
    messages = set()
    for event in hostile:
        p = (rm.Pipeline(runtime=runtime).add_node("src", Opaque).add_node("s", Script, events=[event])
             .add_node("t", "SmartTurn").connect("src", "s").connect("src", "t.in").connect("s", "t.vad"))
        with pytest.raises(rm.InvalidInputError, match="frames events") as e:
            p.run(rm.Audio(np.zeros(RATE, np.float32), RATE))
        messages.add(str(e.value).split(": ", 1)[-1])
    assert len(messages) == 1, messages
    p = rm.Pipeline(runtime=runtime).add_node("t", "SmartTurn")
    out = p.run(rm.Audio(np.zeros(RATE * 2, np.float32), 48000))["t"]  # converted to 16 kHz by the plan
    assert len(out) == 1 and 0 <= out[0]["probability"] <= 1
