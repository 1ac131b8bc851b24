"""Native audio nodes against their numpy references, on generated input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import remotemedia as rm
from helpers import behind_opaque

pytestmark = pytest.mark.skipif(not rm.native_available(), reason="compares against the native runtime")

FORMATS = {"f32": np.float32, "i16": np.int16, "i32": np.int32, "f64": np.float64}
SPECIAL = [0.0, -0.0, 0.5 / 32768, 1.5 / 32768, -2.5 / 32768, 1.0, -1.0, 1 - 2**-24, 2.0, -3e38, 3e38,
           np.nan, np.inf, -np.inf, 0.5 / 2**31, 1.5 / 2**31, 1e-45]


def run_both(manifest: dict, audio: rm.Audio) -> tuple[dict, dict]:
    native = rm.Pipeline.from_manifest(manifest, runtime="native")
    assert set(native.node_runtimes().values()) == {"native"}, "must really run natively"
    return native.run(audio), rm.Pipeline.from_manifest(manifest, runtime="python").run(audio)


def chain(*nodes, connections=None) -> dict:
    ids = [f"n{i}" for i in range(len(nodes))]
    return {"version": "1",
            "nodes": [{"id": i, "node_type": t, "params": p} for i, (t, p) in zip(ids, nodes)],
            "connections": connections if connections is not None else
            [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]}


def assert_identical(a: dict, b: dict):
    assert list(a) == list(b)
    for key in a:
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key]):
            assert x.samples.dtype == y.samples.dtype and x.samples.shape == y.samples.shape
            assert x.sample_rate == y.sample_rate
            np.testing.assert_array_equal(x.samples, y.samples)  # NaN == NaN here


@st.composite
def any_audio(draw, dtypes=None, max_channels=3, max_frames=200):
    dtype = np.dtype(draw(st.sampled_from(dtypes or tuple(FORMATS.values()))))
    channels = draw(st.integers(1, max_channels))
    frames = draw(st.integers(0, max_frames))
    if dtype.kind == "f":
        elements = st.one_of(st.sampled_from(SPECIAL), st.floats(-1.5, 1.5, width=dtype.itemsize * 8))
    else:
        info = np.iinfo(dtype)
        elements = st.integers(info.min, info.max)
    x = draw(hnp.arrays(dtype, (frames, channels), elements=elements))
    return rm.Audio(x if channels > 1 else x.reshape(-1), draw(st.sampled_from([8000, 16000, 44100, 48000])))


@settings(max_examples=300, deadline=None)
@given(audio=any_audio(), target=st.sampled_from(sorted(FORMATS)))
def test_format_converter_is_bit_exact(audio, target):
    with np.errstate(all="ignore"):
        native, python = run_both(chain(("FormatConverter", {"format": target})), audio)
    assert_identical(native, python)
    assert native["n0"][0].samples.dtype == FORMATS[target]


def test_format_converter_conventions():
    x = np.array([0.0, 1.0, -1.0, 0.5 / 32768, 1.5 / 32768, np.nan, np.inf, -np.inf, 2.0], np.float32)
    out = rm.Pipeline().add_node("c", "FormatConverter", format="i16").run(rm.Audio(x, 16000))["c"][0]
    assert out.samples.tolist() == [0, 32767, -32768, 0, 2, 0, 32767, -32768, 32767]
    back = rm.Pipeline().add_node("c", "FormatConverter", format="f32").run(out)["c"][0]
    assert back.samples[2] == -1.0 and back.samples[1] == np.float32(32767 / 32768)


def test_same_format_is_passed_through():
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    p = rm.Pipeline().add_node("c", "FormatConverter", format="f32")
    np.testing.assert_array_equal(p.run(rm.Audio(x, 16000))["c"][0].samples, x)


@settings(max_examples=200, deadline=None)
@given(audio=any_audio(dtypes=(np.float32, np.float64), max_channels=6))
def test_downmix_to_mono_is_exact(audio):
    with np.errstate(all="ignore"):
        native, python = run_both(chain(("Downmix", {})), audio)
    assert_identical(native, python)
    assert native["n0"][0].channels == 1


@settings(max_examples=200, deadline=None)
@given(audio=any_audio(max_channels=4), data=st.data())
def test_downmix_map_picks_channels(audio, data):
    mapping = data.draw(st.lists(st.integers(0, audio.channels - 1), min_size=1, max_size=5))
    native, python = run_both(chain(("Downmix", {"map": mapping})), audio)
    assert_identical(native, python)
    frames = audio.samples.reshape(audio.frames, audio.channels)
    picked = native["n0"][0].samples.reshape(audio.frames, len(mapping))
    np.testing.assert_array_equal(picked, frames[:, mapping])


@settings(max_examples=200, deadline=None)
@given(audio=any_audio(max_frames=500), first=st.integers(1, 97), size=st.integers(1, 64),
       tail=st.sampled_from(["pad", "emit", "drop"]))
def test_rechunk_output_does_not_depend_on_input_chunking(audio, first, size, tail):
    # n0 re-chunks the input arbitrarily (keeping every sample); n1 must not care.
    chunked, direct = run_both(chain(("Rechunk", {"frame_samples": first, "tail": "emit"}),
                                     ("Rechunk", {"frame_samples": size, "tail": tail})), audio)
    assert_identical(chunked, direct)
    alone = rm.Pipeline.from_manifest(chain(("Rechunk", {"frame_samples": size, "tail": tail})),
                                      runtime="native").run(audio)
    frames = chunked.get("n1", [])
    assert len(frames) == len(alone.get("n0", []))
    for a, b in zip(frames, alone.get("n0", [])):
        np.testing.assert_array_equal(a.samples, b.samples)
    n = audio.frames
    expected = {"pad": -(-n // size) * size, "emit": n, "drop": n // size * size}[tail]
    assert sum(f.frames for f in frames) == expected, "sample count is conserved as documented"
    assert all(f.frames == size for f in frames[:n // size])


def test_rechunk_frame_ms():
    x = np.arange(1000, dtype=np.int16)
    out = rm.Pipeline().add_node("r", "Rechunk", frame_ms=30).run(rm.Audio(x, 16000))["r"]
    assert [f.frames for f in out] == [480, 480, 480]
    assert out[-1].samples[40:].tolist() == [0] * 440
    with pytest.raises(rm.NodeError, match="not a whole number of frames"):
        rm.Pipeline().add_node("r", "Rechunk", frame_ms=0.1).run(rm.Audio(x, 44100))


@pytest.mark.parametrize("node_type, params, path", [
    ("FormatConverter", {}, "nodes[0].params"),
    ("FormatConverter", {"format": "u8"}, "nodes[0].params.format"),
    ("Downmix", {"map": []}, "nodes[0].params.map"),
    ("Downmix", {"map": [-1]}, "nodes[0].params.map"),
    ("Rechunk", {}, "nodes[0].params"),
    ("Rechunk", {"frame_ms": 0}, "nodes[0].params.frame_ms"),
    ("Rechunk", {"frame_samples": 0}, "nodes[0].params.frame_samples"),
    ("Rechunk", {"frame_samples": 10, "tail": "wrap"}, "nodes[0].params.tail"),
])
def test_bad_params_name_node_and_param(runtime, node_type, params, path):
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline.from_manifest(chain((node_type, params)), runtime=runtime)
    assert info.value.path.startswith(path), (info.value.path, str(info.value))


def test_int_audio_is_converted_for_the_mixer_or_refused(runtime):
    audio = rm.Audio(np.array([[1000, 3000], [-2000, 0]], np.int16), 16000)
    mixed = rm.Pipeline(runtime=runtime).add_node("d", "Downmix").run(audio)["d"][0]
    assert mixed.samples.dtype == np.float32 and np.allclose(mixed.samples, [2000 / 32768, -1000 / 32768])
    off = rm.Pipeline(runtime=runtime, auto_convert=False).add_node("d", "Downmix")
    with pytest.raises(rm.ManifestError, match=r"inserting FormatConverter\(format=f32\) would fix it"):
        off.run(audio)
    with pytest.raises(rm.NodeError, match="convert first"):
        behind_opaque(runtime, "d", "Downmix", {}).run(audio)
