"""Hostile input: every failure is a RemoteMediaError, the same class with the same path
on both runtimes, and the Python runtime's validator rejects what the native one does.

Manifests are valid ones with one thing broken: any field replaced by a hostile value,
removed, added or duplicated, the text cut short or garbled, or a wrong kind of
argument. Buffers and arguments are hostile dtypes, shapes, layouts, rates, timeouts
and capacities.
"""

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia import manifest, native

RUNTIMES = ("native", "python") if rm.native_available() else ("python",)

HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 2**32, 2**64, 2**64 - 1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=80),
    st.sampled_from(["", " ", "\0", "é", "\ud800", "a.b", "x" * 70, "NaN", "auto", "python", "f32", "fail", "skip"]),
    st.lists(st.integers(-3, 70), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.integers(100, 140).map(lambda d: json.loads("[" * d + "]" * d)),
    st.integers(100, 140).map(lambda d: json.loads('{"a":' * d + "1" + "}" * d)),
)

NODE_TYPES = ["PassThrough", "Gain", "FormatConverter", "Downmix", "Rechunk", "Resample", "VAD", "Fault"]
VALID_PARAMS = {"Gain": {"gain_db": -6.0}, "FormatConverter": {"format": "i16"}, "Downmix": {"map": [0, 0]},
                "Rechunk": {"frame_samples": 160, "tail": "emit"}, "Resample": {"target_rate": 16000, "quality": "fast"},
                "VAD": {"frame_ms": 20, "threshold": 0.5, "hangover_ms": 60, "min_speech_ms": 40, "gate": True},
                "Fault": {"fail_first": 1, "mode": "permanent", "hang_ms": 5}}


@st.composite
def valid_manifests(draw):
    n = draw(st.integers(1, 4))
    nodes = []
    for i in range(n):
        kind = draw(st.sampled_from(NODE_TYPES))
        node = {"id": f"n{i}", "node_type": kind, "params": json.loads(json.dumps(VALID_PARAMS.get(kind, {})))}
        if draw(st.booleans()):
            # ("native" is left out: the Python runtime refuses it by design.)
            node["runtime_hint"] = draw(st.sampled_from(["auto", "python"]))
        if draw(st.booleans()):
            node["retry"] = {"max_retries": 2, "base_ms": 10, "factor": 2.0, "max_ms": 100, "jitter": 0.5}
        if draw(st.booleans()):
            node["circuit_breaker"] = {"failures": 3, "cooldown_ms": 1000, "on_open": "skip"}
        if draw(st.booleans()):
            node["timeout_ms"] = 500
        nodes.append(node)
    connections = [{"from": f"n{i}", "to": f"n{j}"} for i in range(n) for j in range(i + 1, n) if draw(st.booleans())]
    return {"version": "1", "metadata": {"name": "hostile"}, "nodes": nodes, "connections": connections}


def places(value, path=()):
    """Every (container path, key) of a JSON document."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield path, key
        yield from places(item, (*path, key))


def at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def hostile_sources(draw):
    """A manifest source (dict, str or bytes) with one thing broken."""
    m = draw(valid_manifests())
    spots = list(places(m))
    how = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add", "text", "kind"]))
    if how in ("replace", "remove"):
        path, key = draw(st.sampled_from(spots))
        parent = at(m, path)
        if how == "replace":
            parent[key] = draw(HOSTILE_VALUES)
        elif isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif how == "add":
        containers = [()] + [(*p, k) for p, k in spots if isinstance(at(m, (*p, k)), dict)]
        at(m, draw(st.sampled_from(containers)))[draw(st.sampled_from(["extra", "id", "params", "x"]))] = draw(HOSTILE_VALUES)
    elif how == "text":
        text = json.dumps(m, ensure_ascii=draw(st.booleans()))
        cut = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["truncate", "garble", "bom", "duplicate", "trailing", "bytes"]))
        if edit == "truncate":
            return text[:cut]
        if edit == "garble":
            return text[:cut] + draw(st.sampled_from(["\0", "}", "]", ",", ":", "\\", '"', "NaN", "\ud800"])) + text[cut:]
        if edit == "bom":
            return "\ufeff" + text
        if edit == "duplicate":  # the last of duplicated keys wins, on both runtimes
            return text.replace('"version": "1"', '"version": "2", "version": "1"', 1).replace(
                '"id": "n0"', '"id": "n0", "id": "bad id"', draw(st.integers(0, 1)))
        if edit == "trailing":
            return text + draw(st.sampled_from([" ", "x", "{}", "\n\n"]))
        raw = text.encode()
        return raw[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b""])) + raw[cut:]
    else:
        return draw(st.sampled_from([None, b"", "", "[]", "{}", "null", "   ", 5, 1.5, [], ["x"], b"[]", "\ufeff",
                                     "no/such/file.json", "/", "x" * 5000, "a\0b", bytearray(b"{}")]))
    return m if draw(st.booleans()) else json.dumps(m, ensure_ascii=draw(st.booleans()))


def outcome(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
        return ("ok",)
    except rm.RemoteMediaError as e:
        return (type(e).__name__, getattr(e, "path", None))


def native_validator(text_or_dict):
    """Class and path from the C API alone, bypassing the Python validator."""
    text = json.dumps(text_or_dict, separators=(",", ":")) if isinstance(text_or_dict, dict) else text_or_dict
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    out = native.ffi.new("RmPipeline **")
    status = native.lib.rm_pipeline_new(native.NativeRuntime.get().ptr, raw, len(raw), out)
    if status == native.OK:
        native.lib.rm_pipeline_free(out[0])
        return ("ok",)
    e = native._error(status)
    return (type(e).__name__, getattr(e, "path", None))


@settings(max_examples=int(os.environ.get("HOSTILE_EXAMPLES", 10_000)), deadline=None, suppress_health_check=list(HealthCheck))
@given(source=hostile_sources())
def test_hostile_manifests_fail_cleanly_and_alike(source):
    results = [outcome(rm.Pipeline.from_manifest, source, runtime=r) for r in RUNTIMES]
    assert len(set(results)) == 1, (source, results)
    if rm.native_available() and isinstance(source, dict) and results[0][0] in ("ok", "ManifestError"):
        try:
            json.dumps(source, allow_nan=False)
        except ValueError:
            return  # NaN has no JSON text: only the Python side can see it
        assert native_validator(source) == results[0], (source, results)


def test_sources_are_told_apart_by_one_rule(tmp_path):
    m = {"version": "1", "nodes": [{"id": "a", "node_type": "PassThrough"}]}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(m))
    for source in (m, json.dumps(m), "\ufeff" + json.dumps(m), json.dumps(m).encode(), b"\xef\xbb\xbf" + json.dumps(m).encode(),
                   path, str(path), "  \n" + json.dumps(m)):
        assert rm.Pipeline.from_manifest(source).to_manifest()["nodes"][0]["id"] == "a"
    for source, where in ((str(tmp_path), "cannot read"), ("", "empty"), ("missing.json", "cannot read"), ("[]", "expected a manifest"),
                          (None, "got NoneType"), (b"\xff", "not UTF-8")):
        with pytest.raises(rm.ManifestError, match=where):
            rm.Pipeline.from_manifest(source)


def test_a_manifest_of_exactly_the_limit_passes_on_both_runtimes():
    m = {"version": "1", "metadata": {"pad": ""}, "nodes": [{"id": "a", "node_type": "PassThrough"}]}
    base = len(json.dumps(m, separators=(",", ":")))
    limit = manifest.MAX_MANIFEST_BYTES
    m["metadata"]["pad"] = "x" * (limit - base)
    text = json.dumps(m, separators=(",", ":"))
    assert len(text) == limit
    for runtime in RUNTIMES:
        rm.Pipeline.from_manifest(text, runtime=runtime)
        rm.Pipeline.from_manifest(m, runtime=runtime)
        with pytest.raises(rm.ManifestError, match="more than the limit"):
            rm.Pipeline.from_manifest(text + " ", runtime=runtime)


# ---- buffers and arguments ---------------------------------------------------------

HOSTILE_NUMBERS = st.one_of(st.sampled_from([-1, 0, 0.0, -0.5, math.nan, math.inf, -math.inf, 1e10, 2**32, 2**64, 2**70, True, None, "1",
                                             1.5, 1e300]), st.integers(-(2**66), 2**66), st.floats())


@st.composite
def hostile_arrays(draw):
    kind = draw(st.sampled_from(["dtype", "strided", "zero_stride", "misaligned", "shape", "ok"]))
    x = np.arange(32, dtype=np.float32)
    if kind == "dtype":
        return x.astype(draw(st.sampled_from([np.int8, np.uint16, np.float16, np.complex64, np.bool_, object])))
    if kind == "strided":
        return x[::2]
    if kind == "zero_stride":
        return np.broadcast_to(np.float32(1), (16,))
    if kind == "misaligned":
        return np.frombuffer(np.zeros(33 * 4, np.uint8).tobytes()[1:129], np.float32)
    if kind == "shape":
        return draw(st.sampled_from([x.reshape(2, 2, 8), x.reshape(32, 1, 1), np.zeros((0, 0), np.float32), np.float32(1.0)]))
    return x.reshape(-1, draw(st.sampled_from([1, 2, 4])))


def buffer_outcome(call, *args):
    try:
        call(*args)
        return ("ok",)
    except rm.RemoteMediaError as e:
        return (type(e).__name__,)


@settings(max_examples=int(os.environ.get("HOSTILE_EXAMPLES", 5_000)), deadline=None, suppress_health_check=list(HealthCheck))
@given(array=hostile_arrays(), rate=st.one_of(st.sampled_from([16000, 48000]), HOSTILE_NUMBERS),
       timeout=st.one_of(st.just(0.0), HOSTILE_NUMBERS), capacity=st.one_of(st.just(8), HOSTILE_NUMBERS),
       op=st.sampled_from(["run", "push", "pull", "stream"]))
def test_hostile_buffers_and_arguments_fail_cleanly_and_alike(array, rate, timeout, capacity, op):
    if op == "pull" and isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0.05 < timeout < 1e9:
        timeout = 0.01  # a valid long timeout would only wait on an empty stream
    def attempt(runtime):
        p = rm.Pipeline(runtime=runtime).add_node("g", "Gain", gain_db=1.0)
        if op == "stream":
            with p.stream(capacity=capacity):
                return
        audio = rm.Audio(array, rate)
        if op == "run":
            p.run(audio)
            return
        with p.stream() as s:
            if op == "push":
                s.push(audio, timeout=timeout)
            else:
                s.pull(timeout=timeout)
    results = [buffer_outcome(attempt, r) for r in RUNTIMES]
    assert len(set(results)) == 1, results
