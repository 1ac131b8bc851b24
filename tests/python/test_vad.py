"""VAD: native against its numpy reference on generated speech-like signals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from helpers import behind_opaque, one_node

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="compares against the native runtime")


def voiced_bursts(seed: int, rate: int = 16000, seconds: float = 6.0, snr_db: float = 10.0, colour: str = "white"):
    """Harmonic bursts (f0 100-250 Hz, 4 Hz syllable envelope) in noise; returns audio and per-sample truth."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    truth = np.zeros(n, bool)
    clean = np.zeros(n)
    at = int(rng.uniform(0.3, 0.8) * rate)
    while at < n:
        length = int(rng.uniform(0.3, 1.2) * rate)
        t = np.arange(min(length, n - at)) / rate
        f0 = rng.uniform(100, 250)
        burst = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 25) if f0 * h < 3800)
        burst *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
        clean[at:at + len(t)] = burst
        truth[at:at + len(t)] = True
        at += len(t) + int(rng.uniform(0.3, 1.0) * rate)
    noise = rng.standard_normal(n)
    if colour == "pink":
        spectrum = np.fft.rfft(noise) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / rate), 20))
        noise = np.fft.irfft(spectrum, n)
    power = clean[truth].var() if truth.any() else 1.0
    x = clean + noise * np.sqrt(power / noise.var() / 10 ** (snr_db / 10))
    return (x / np.abs(x).max() * 0.9).astype(np.float32), truth


def vad(runtime, chunk=None, **params):
    return one_node(runtime, "v", "VAD", params, chunk)


def decisions(result):
    events = result.get("v", [])
    speech = np.concatenate([e["speech"] for e in events]).astype(bool) if events else np.zeros(0, bool)
    score = np.concatenate([e["score"] for e in events]) if events else np.zeros(0)
    return speech, score


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), snr=st.sampled_from([20, 10, 5, 0]), colour=st.sampled_from(["white", "pink"]),
       frame_ms=st.sampled_from([10, 20, 30]), rate=st.sampled_from([8000, 16000, 32000, 48000]))
def test_native_matches_reference(seed, snr, colour, frame_ms, rate):
    x, _ = voiced_bursts(seed, rate=rate, seconds=4.0, snr_db=snr, colour=colour)
    audio = rm.Audio(x, rate)
    native, n_score = decisions(vad("native", frame_ms=frame_ms).run(audio))
    python, p_score = decisions(vad("python", frame_ms=frame_ms).run(audio))
    assert len(native) == len(python) == len(x) // (rate * frame_ms // 1000)
    assert (native == python).mean() >= 0.99
    assert np.abs(n_score - p_score).max() < 1e-3


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), chunk=st.integers(1, 2000), min_speech=st.sampled_from([0, 90]),
       gate=st.booleans())
def test_chunking_does_not_change_anything(seed, chunk, min_speech, gate):
    x, _ = voiced_bursts(seed, seconds=3.0)
    audio = rm.Audio(x, 16000)
    whole = vad("native", min_speech_ms=min_speech, gate=gate).run(audio)
    chunked = vad("native", chunk=chunk, min_speech_ms=min_speech, gate=gate).run(audio)
    for a, b in zip(decisions(whole), decisions(chunked)):
        np.testing.assert_array_equal(a, b)
    assert whole.get("v.segments") == chunked.get("v.segments")

    def cat(r):
        return np.concatenate([a.samples for a in r.get("v.audio", [])] or [np.zeros(0, np.float32)])

    np.testing.assert_array_equal(cat(whole), cat(chunked))


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_detects_voiced_bursts(runtime, colour):
    x, truth = voiced_bursts(7, seconds=12.0, snr_db=10, colour=colour)
    speech, score = decisions(vad(runtime).run(rm.Audio(x, 16000)))
    frame_truth = truth[:len(speech) * 480].reshape(-1, 480).mean(1) > 0.5
    recall = (speech & frame_truth).sum() / frame_truth.sum()
    precision = (speech & frame_truth).sum() / max(speech.sum(), 1)
    assert recall > 0.85 and precision > 0.85, (precision, recall)
    assert score[frame_truth].mean() > 0.75 and score[~frame_truth].mean() < 0.4


def test_segments_gate_and_frames_agree(runtime):
    x, _ = voiced_bursts(3, seconds=8.0)
    result = vad(runtime, gate=True, min_silence_ms=0).run(rm.Audio(x, 16000))  # segments: the runs exactly
    speech, _ = decisions(result)
    segments = result["v.segments"]
    marked = np.zeros(len(speech), bool)
    for s in segments:
        assert s["end"] > s["start"]
        marked[round(s["start"] / 0.03):round(s["end"] / 0.03)] = True
    np.testing.assert_array_equal(marked, speech)
    gated = result["v.audio"]
    assert len(gated) == speech.sum() and all(a.frames == 480 for a in gated)
    expected = x[:len(speech) * 480].reshape(-1, 480)[speech]
    np.testing.assert_array_equal(np.stack([a.samples for a in gated]), expected)


def test_no_gate_no_audio(runtime):
    x, _ = voiced_bursts(3, seconds=3.0)
    assert "v.audio" not in vad(runtime).run(rm.Audio(x, 16000))


def test_min_speech_drops_short_runs(runtime):
    rate = 16000
    t = np.arange(rate * 4) / rate
    tone = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 20))
    x = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    x[int(1.0 * rate):int(1.06 * rate)] += tone[:int(0.06 * rate)]  # a 60 ms blip
    # a 0.45 s burst (a steady tone held longer is learned as noise within ~0.5 s)
    x[int(2.0 * rate):int(2.45 * rate)] += tone[:int(0.45 * rate)]
    audio = rm.Audio((x / np.abs(x).max() * 0.5).astype(np.float32), rate)
    # A high threshold keeps the white noise out, so only the run lengths matter here.
    loose = vad(runtime, min_speech_ms=0, threshold=0.8, hangover_ms=30).run(audio)["v.segments"]
    strict = vad(runtime, min_speech_ms=150, threshold=0.8, hangover_ms=30).run(audio)["v.segments"]
    assert any(s["start"] < 1.1 for s in loose), loose
    assert all(s["start"] > 1.5 for s in strict) and len(strict) == 1, strict
    assert 2.4 < strict[0]["end"] < 2.7


@pytest.mark.parametrize("params, path", [({"frame_ms": 25}, "frame_ms"), ({"threshold": 1.5}, "threshold"),
                                          ({"hangover_ms": -1}, "hangover_ms"), ({"gate": "yes"}, "gate"),
                                          ({"min_speech_ms": 9999}, "min_speech_ms")])
def test_bad_params(runtime, params, path):
    with pytest.raises(rm.ManifestError) as info:
        vad(runtime, **params)
    assert info.value.path == f"nodes[0].params.{path}"


@pytest.mark.parametrize("audio, message, inserted", [
    (rm.Audio(np.zeros(480, np.float32), 44100), "resample first", "input→v.resample"),
    (rm.Audio(np.zeros(480, np.int16), 16000), "FormatConverter", "input→v.to_f32"),
    (rm.Audio(np.zeros((480, 2), np.float32), 16000), "Downmix", "input→v.downmix"),
])
def test_unfit_audio_is_converted_or_refused(runtime, audio, message, inserted):
    p = vad(runtime)
    p.run(audio)
    assert [n["id"] for n in p.plan()["nodes"] if n["inserted"]] == [inserted]
    with pytest.raises(rm.NodeError, match=message):
        behind_opaque(runtime, "v", "VAD", {}).run(audio)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), pad=st.sampled_from([0, 10, 30, 100, 400]), silence=st.sampled_from([0, 100, 300]),
       max_s=st.sampled_from([None, 0.05, 0.3, 1.0]), hangover=st.sampled_from([0, 90, 300]),
       chunk=st.integers(1, 4000))
def test_segments_padded_and_split_alike_on_both_runtimes(seed, pad, silence, max_s, hangover, chunk):
    x, _ = voiced_bursts(seed, rate=16000, seconds=4.0, snr_db=5)
    params = {"speech_pad_ms": pad, "min_silence_ms": silence, "max_speech_s": max_s, "hangover_ms": hangover}
    native, python = (vad(runtime, chunk=chunk, **params).run(rm.Audio(x, 16000)) for runtime in ("native", "python"))
    segments = native.get("v.segments", [])
    assert segments == python.get("v.segments", [])
    duration = len(x) / 16000
    ends = [(s["start"], s["end"]) for s in segments]
    assert all(0 <= a < b <= duration + 1e-9 for a, b in ends), ends
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(ends, ends[1:])), "sorted, no overlap"
    if max_s is not None:
        longest = max(max_s, 2 * 0.03) + 2 * pad / 1000
        assert all(b - a <= longest + 1e-9 for a, b in ends), (ends, longest)
    speech, _ = decisions(native)
    for i in np.flatnonzero(speech):
        t = (i + 0.5) * 0.03
        assert any(a <= t <= b for a, b in ends), f"speech frame {i} outside every segment"


@pytest.mark.parametrize("runtime", ["native", "python"])
@pytest.mark.parametrize("lead_db", [-200, -90, -60])
def test_the_noise_floor_follows_a_quiet_lead_in_within_a_second(runtime, lead_db):
    rng = np.random.default_rng(5)
    lead = rng.standard_normal(16000) * 10 ** (lead_db / 20)
    x = np.concatenate([lead, rng.standard_normal(16000 * 5) * 10 ** (-35 / 20)]).astype(np.float32)
    speech, _ = decisions(vad(runtime).run(rm.Audio(x, 16000)))
    assert not speech[:33].any(), "the quiet lead-in is never speech (min_level_dbfs)"
    assert not speech[int(1.8 / 0.03):].any(), "noise more than 0.8 s after it rose is not speech"
