"""The Python side takes the facts it shares with Rust from contract.json, retyping none."""

import inspect
import io
import json
import tokenize
from pathlib import Path

import pytest

import remotemedia as rm
from remotemedia import _contract, manifest, native
from remotemedia.node import registered

PKG = Path(rm.__file__).parent


def test_every_builtin_twin_takes_its_spec_from_the_contract():
    twins = registered()
    assert set(_contract.NODES) - _contract.NATIVE_ONLY <= set(twins)
    assert not _contract.NATIVE_ONLY & set(twins), "a native-only type has no twin"
    for name, spec in _contract.NODES.items():
        if name in _contract.NATIVE_ONLY:
            continue
        cls = twins[name]
        assert cls.params_schema is spec["params"], name
        assert list(cls.outputs) == spec["outputs"] and cls.description() == spec["description"], name
        signature = inspect.signature(cls.__init__).parameters
        for param, schema in spec["params"].get("properties", {}).items():
            assert param in signature, f"{name}.{param} never reaches the twin"
            if "default" in schema:
                assert signature[param].default is inspect.Parameter.empty, f"{name}.{param}: default retyped in Python"


def identity_model(path: Path) -> str:
    """A model for the Model node's required params: y = x, 4 samples."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    xy = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "xy"]
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", xy[:1], xy[1:])),
              str(path))
    return str(path)


def test_every_param_default_reaches_the_twin(tmp_path):
    for name, spec in _contract.NODES.items():
        if name in _contract.NATIVE_ONLY:
            continue
        required = {k: 48000 if k == "target_rate" else "f32" for k in spec["params"].get("required", [])}
        extra = {"frame_ms": 20} if name == "Rechunk" else {}
        if name == "Model":
            required = {"model_path": identity_model(tmp_path / "id.onnx"), "window": 4}
        node = registered()[name].create({**required, **extra})
        for param, value in _contract.defaults(spec["params"]).items():
            assert node._params[param] == value, (name, param)


def test_manifest_rules_come_from_the_contract():
    rules = _contract.MANIFEST
    assert (manifest.VERSION, manifest.MAX_NODES, manifest.MAX_CONNECTIONS, manifest.MAX_ID_LEN) == (
        rules["version"], rules["max_nodes"], rules["max_connections"], rules["max_id_len"])
    assert manifest.RETRY_DEFAULT == _contract.defaults(rules["retry"])
    assert manifest.BREAKER_DEFAULT == _contract.defaults(rules["circuit_breaker"])


def _int_literals(path: Path) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {int(t.string.replace("_", ""), 0) for t in tokens if t.type == tokenize.NUMBER and t.string.replace("_", "").isdigit()}


def _contract_numbers(value) -> set[int]:
    if isinstance(value, dict):
        return set().union(*(_contract_numbers(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_contract_numbers(v) for v in value), set())
    return {int(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value) else set()


def test_no_limit_or_bound_is_retyped_in_the_package():
    # Every large number of the manifest rules (limits, bounds, defaults) and the stream
    # capacity; 1000 is left out, it is also the ms-per-second of unit conversions. The
    # twins in nodes/ are left out too: their params come from the contract (above), and
    # their algorithm constants (Resample's 1024-frame block) are theirs to mirror.
    facts = {n for n in _contract_numbers(_contract.MANIFEST) | {_contract.DEFAULT_CAPACITY} if n > 1000}
    assert facts, "the contract has limits"
    for path in PKG.glob("*.py"):
        retyped = facts & _int_literals(path)
        assert not retyped, f"{path.name} retypes {sorted(retyped)} from contract.json"


@pytest.mark.skipif(not rm.native_available(), reason="compares against the cffi declarations")
def test_contract_agrees_with_the_compiled_header():
    lib = native.lib
    for name, code in _contract.CONTRACT["status"].items():
        assert getattr(lib, f"RM_STATUS_{name}") == code, name
    for name, code in _contract.SAMPLE_FORMATS.items():
        assert getattr(lib, f"RM_SAMPLE_FORMAT_{name.upper()}") == code
    for name, code in _contract.CONTRACT["data_kinds"].items():
        assert getattr(lib, f"RM_DATA_KIND_{name.upper()}") == code
    for name, code in _contract.LOG_LEVELS.items():
        assert getattr(lib, f"RM_LOG_LEVEL_{name.upper()}") == code
    for code, name in enumerate(_contract.OVERFLOW):
        assert getattr(lib, f"RM_OVERFLOW_{name.upper()}") == code


@pytest.mark.skipif(not rm.native_available(), reason="compares against the native registry")
def test_native_node_listing_matches_the_contract():
    native_types = {t["node_type"]: t for t in native.NativeRuntime.get().node_types() if "plugin" not in t}
    for name, spec in _contract.NODES.items():
        assert native_types[name]["params"] == spec["params"]
        assert native_types[name]["outputs"] == spec["outputs"]


def test_contract_file_is_valid_json_with_a_generator_note():
    text = (PKG / "contract.json").read_text()
    assert "do not edit" in json.loads(text)["generated_by"]
