"""Manifest loading and structural validation for the pure-Python runtime.

Mirrors native/src/manifest: the same rules, the same ``ManifestError.path`` values,
so a manifest fails the same way on either runtime.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from . import caps as caps_mod
from ._contract import MANIFEST, defaults
from ._schema import SchemaError, check_bounds, check_shape, describe_json
from .errors import ManifestError, did_you_mean

VERSION: str = MANIFEST["version"]
MAX_MANIFEST_BYTES: int = MANIFEST["max_manifest_bytes"]
MAX_NODES: int = MANIFEST["max_nodes"]
MAX_CONNECTIONS: int = MANIFEST["max_connections"]
MAX_ID_LEN: int = MANIFEST["max_id_len"]
MAX_INPUTS: int = MANIFEST["max_inputs"]
#: The name of a pipeline's input when it declares no ``inputs``.
DEFAULT_INPUT: str = MANIFEST["default_input"]
RUNTIME_HINTS: tuple[str, ...] = tuple(MANIFEST["runtime_hints"])
ISOLATIONS: tuple[str, ...] = tuple(MANIFEST["isolations"])
#: JSON Schemas of the per-node policies, and their defaults.
POLICIES = {"retry": MANIFEST["retry"], "circuit_breaker": MANIFEST["circuit_breaker"]}
RETRY_DEFAULT = defaults(POLICIES["retry"])
BREAKER_DEFAULT = defaults(POLICIES["circuit_breaker"])

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_TOP = {"version": str, "metadata": dict, "nodes": list, "connections": list, "input": object, "inputs": list,
        "auto_convert": bool, "latency_budget_ms": (int, float)}
_INPUT = {"name": str, "format": object, "channels": object, "sample_rate": object}
_NODE = {"id": str, "node_type": str, "params": dict, "runtime_hint": str, "retry": dict, "circuit_breaker": dict,
         "timeout_ms": int, "isolation": str, "latency_budget_ms": (int, float)}
_CONNECTION = {"from": str, "to": str}
#: Node fields that may be null, meaning absent (as the native parser takes them).
_OPTIONAL = ("retry", "circuit_breaker", "timeout_ms", "latency_budget_ms")


#: Deepest nesting of arrays and objects the native parser accepts (the manifest object is 1).
MAX_DEPTH = 127


def load(source) -> tuple[dict, str]:
    """The manifest in ``source`` (not yet validated) and its JSON text, as the native
    runtime receives it.

    One rule tells the kinds of ``source`` apart, without ever trying to open text:
    a ``dict`` is the manifest itself; ``bytes`` are JSON text; an ``os.PathLike``
    (``pathlib.Path``) is a file to read; a ``str`` is JSON text when its first
    character other than white space (and a byte-order mark) is ``{`` or ``[``, and
    a file path otherwise. JSON text may start with a UTF-8 byte-order mark. Every
    failure is a ManifestError.
    """
    if isinstance(source, dict):
        check_json(source)
        try:
            text = json.dumps(source, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as e:
            raise ManifestError("$", f"not JSON: {e}") from None
        check_size(text)
        return source, text
    if isinstance(source, str) and source.lstrip("\ufeff \t\r\n")[:1] not in ("{", "["):
        source = _read(source)
    elif isinstance(source, os.PathLike):
        source = _read(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            source = bytes(source).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError("$", f"manifest is not UTF-8: {e}") from None
    if not isinstance(source, str):
        raise ManifestError("$", f"a manifest is a dict, JSON text (str or bytes) or a file path, got {type(source).__name__}")
    text = source.removeprefix("\ufeff")
    check_size(text)
    try:
        value = json.loads(text, parse_constant=float)
    except json.JSONDecodeError as e:
        raise ManifestError("$", str(e)) from None
    except RecursionError:
        raise ManifestError("$", "nesting is too deep") from None
    if not isinstance(value, dict):
        raise ManifestError("$", f"invalid type: {type(value).__name__}, expected a manifest object")
    check_json(value)
    return value, text


def _read(path) -> bytes:
    """The bytes of a manifest file, or a ManifestError saying why there are none."""
    if path == "":
        raise ManifestError("$", "the manifest path is empty (JSON text starts with '{')")
    try:
        return Path(path).read_bytes()
    except (OSError, ValueError) as e:
        raise ManifestError("$", f"cannot read manifest file {str(path)[:200]!r}: {getattr(e, 'strerror', None) or e}") from None


def check_size(text: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError("$", f"manifest is {size} bytes, more than the limit of {MAX_MANIFEST_BYTES}")


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def check_json(value, path: str = "$", depth: int = 1) -> None:
    """Fails with a ManifestError naming the first place (in document order) that the
    native JSON parser rejects: nesting deeper than MAX_DEPTH, a number that is not
    finite, a string that is not Unicode text, a key that is not a string, or a value
    JSON has no form for."""
    if isinstance(value, (dict, list, tuple)):
        if depth > MAX_DEPTH:
            raise ManifestError(path, f"recursion limit exceeded: nested deeper than {MAX_DEPTH}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and not isinstance(key, str):
                raise ManifestError(path, f"key must be a string, got {type(key).__name__}")
            if isinstance(value, dict) and not _is_text(key):
                # The native parser names no key it could not read: `?`.
                raise ManifestError("$" if path == "$" else f"{path}.?", "invalid unicode in a key: a lone surrogate")
            sub = f"{path}[{key}]" if not isinstance(value, dict) else (key if path == "$" else f"{path}.{key}")
            check_json(item, sub, depth + 1)
    elif isinstance(value, str):
        if not _is_text(value):
            raise ManifestError(path, "invalid unicode: a lone surrogate")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ManifestError(path, f"number out of range: {value}")
    elif value is not None and not isinstance(value, (bool, int)):
        raise ManifestError(path, f"invalid type: {type(value).__name__} is not a JSON value")


#: What serde says it expected, per the Python types of a manifest field.
_SERDE_KINDS = {(str,): "a string", (dict,): "a map", (list,): "a sequence", (bool,): "a boolean", (int,): "u64",
                ((int, float),): "f64", (int, float): "f64", (object,): "any valid JSON value"}


def _expected(names: list[str]) -> str:
    """What serde (the native parser) says a field or variant should have been."""
    quoted = [f"`{n}`" for n in names]
    if len(quoted) == 1:
        return f"expected {quoted[0]}"
    if len(quoted) == 2:
        return f"expected {quoted[0]} or {quoted[1]}"
    return f"expected one of {', '.join(quoted)}"


def _check_fields(obj: Any, fields: dict, required: tuple, path: str, nullable=()) -> None:
    """Fields of an object: no unknown one, each of its type (``null``
    allowed for those in ``nullable``, meaning absent), the required ones present."""
    where = path or "$"
    if not isinstance(obj, dict):
        raise ManifestError(where, f"expected an object, got {type(obj).__name__}")
    for key, value in obj.items():
        sub = f"{path}.{key}" if path else key
        if key not in fields:
            raise ManifestError(sub, f"unknown field `{key}`, {_expected(list(fields))}")
        kinds = fields[key] if isinstance(fields[key], tuple) else (fields[key],)
        if value is None and key in nullable:
            continue
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise ManifestError(sub, f"invalid type: {describe_json(value)}, expected {_SERDE_KINDS[kinds]}")
    for key in required:
        if key not in obj:
            raise ManifestError(where, f"missing field `{key}`")


def validate(manifest: dict) -> dict:
    """Checks structure, version, limits, ids and connections; returns a normalized copy
    with defaults filled in (``params`` {}, ``runtime_hint`` "auto", ``connections`` [])."""
    _check_fields(manifest, _TOP, ("version", "nodes"), "", nullable=("input", "inputs", "auto_convert", "latency_budget_ms"))
    nodes = list(manifest["nodes"])
    connections = manifest.get("connections", [])
    for i, decl in enumerate(manifest.get("inputs") or []):
        _check_fields(decl, _INPUT, ("name",), f"inputs[{i}]", nullable=("format", "channels", "sample_rate"))
    for i, node in enumerate(nodes):
        _check_fields(node, _NODE, ("id", "node_type"), f"nodes[{i}]", nullable=_OPTIONAL)
        nodes[i] = node = {k: v for k, v in node.items() if not (v is None and k in _OPTIONAL)}
        hint = node.get("runtime_hint", "auto")
        if hint not in RUNTIME_HINTS:
            raise ManifestError(f"nodes[{i}].runtime_hint",
                                f"unknown variant `{hint}`, {_expected(list(RUNTIME_HINTS))}")
        isolation = node.get("isolation", ISOLATIONS[0])
        if isolation not in ISOLATIONS:
            raise ManifestError(f"nodes[{i}].isolation",
                                f"unknown variant `{isolation}`, expected `{'` or `'.join(ISOLATIONS)}`")
        for key, schema in POLICIES.items():
            if key in node:
                _schema_check(check_shape, node[key], schema, f"nodes[{i}].{key}")
    for i, c in enumerate(connections):
        _check_fields(c, _CONNECTION, ("from", "to"), f"connections[{i}]")
    input_caps(manifest)
    _schema_check(check_bounds, manifest.get("latency_budget_ms"), MANIFEST["latency_budget_ms"], "latency_budget_ms")
    if manifest["version"] != VERSION:
        raise ManifestError("version", f"unsupported version '{manifest['version']}', expected '{VERSION}'")
    if not nodes:
        raise ManifestError("nodes", "a pipeline needs at least one node")
    if len(nodes) > MAX_NODES:
        raise ManifestError("nodes", f"{len(nodes)} nodes, more than the limit of {MAX_NODES}")
    if len(connections) > MAX_CONNECTIONS:
        raise ManifestError("connections", f"{len(connections)} connections, more than the limit of {MAX_CONNECTIONS}")
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        nid = node["id"]
        _check_id(nid, "node id", f"nodes[{i}].id")
        if nid in seen:
            raise ManifestError(f"nodes[{i}].id", f"duplicate node id '{nid}' (also nodes[{seen[nid]}])")
        seen[nid] = i
        if not node["node_type"]:
            raise ManifestError(f"nodes[{i}].node_type", "node_type is empty")
        if "retry" in node:
            _check_retry({**RETRY_DEFAULT, **node["retry"]}, f"nodes[{i}].retry")
        if "timeout_ms" in node:
            _schema_check(check_bounds, node["timeout_ms"], MANIFEST["timeout_ms"], f"nodes[{i}].timeout_ms")
        if "latency_budget_ms" in node:
            _schema_check(check_bounds, node["latency_budget_ms"], MANIFEST["latency_budget_ms"],
                          f"nodes[{i}].latency_budget_ms")
        if "circuit_breaker" in node:
            _schema_check(check_bounds, node["circuit_breaker"], POLICIES["circuit_breaker"], f"nodes[{i}].circuit_breaker")
    inputs = manifest.get("inputs")
    _check_inputs(inputs)
    edges = set()
    for i, c in enumerate(connections):
        if c["from"].startswith("$"):
            _check_input_name(inputs, c["from"][1:], i)
        else:
            src = c["from"].split(".", 1)[0]
            if src not in seen:
                raise ManifestError(f"connections[{i}].from", f"no node with id '{src}'{did_you_mean(src, seen)}")
        to = c["to"].split(".", 1)[0]
        if to not in seen:
            raise ManifestError(f"connections[{i}].to", f"no node with id '{to}'{did_you_mean(to, seen)}")
        if (c["from"], c["to"]) in edges:
            raise ManifestError(f"connections[{i}]", f"duplicate connection '{c['from']}' -> '{c['to']}'")
        edges.add((c["from"], c["to"]))
    _check_fed(manifest, nodes, connections)
    return normalize(manifest)


def normalize(manifest: dict) -> dict:
    """A valid manifest (checked by ``validate``, or by the native runtime) as a
    normalized copy: defaults filled in (``params`` {}, ``runtime_hint`` "auto",
    ``connections`` [], policies complete), absent optional fields left out."""
    nodes = [{k: v for k, v in n.items() if not (v is None and k in _OPTIONAL)} for n in manifest["nodes"]]
    connections, inputs = manifest.get("connections", []), manifest.get("inputs")
    return {
        "version": manifest["version"],
        "metadata": dict(manifest.get("metadata", {})),
        "nodes": [{"id": n["id"], "node_type": n["node_type"], "params": dict(n.get("params", {})),
                   "runtime_hint": n.get("runtime_hint", "auto"),
                   **{k: {**default, **n[k]} for k, default in (("retry", RETRY_DEFAULT),
                                                               ("circuit_breaker", BREAKER_DEFAULT)) if k in n},
                   **({"timeout_ms": n["timeout_ms"]} if "timeout_ms" in n else {}),
                   **({"isolation": n["isolation"]} if n.get("isolation", ISOLATIONS[0]) != ISOLATIONS[0] else {}),
                   **({"latency_budget_ms": n["latency_budget_ms"]} if "latency_budget_ms" in n else {})}
                  for n in nodes],
        "connections": [{"from": c["from"], "to": c["to"]} for c in connections],
        **{k: manifest[k] for k in ("input", "auto_convert", "latency_budget_ms") if manifest.get(k) is not None},
        **({"inputs": [{k: v for k, v in d.items() if v is not None} for d in inputs]} if inputs is not None else {}),
    }


def input_caps(manifest: dict) -> list[tuple[str, tuple]]:
    """The pipeline's inputs in order, each with its declared caps (unknown fields where
    the declaration leaves them out): the named ``inputs``, else the one input."""
    def read(value, at: str) -> tuple:
        try:
            return caps_mod.from_json(value)
        except ValueError as e:
            field, message = e.args
            raise ManifestError(f"{at}.{field}" if field else at, message) from None

    declared, named = manifest.get("input"), manifest.get("inputs")
    if declared is not None and named is not None:
        raise ManifestError("inputs", 'give either "input" (one input) or "inputs" (named ones), not both')
    if named is not None:
        return [(d["name"], read({k: v for k, v in d.items() if k != "name" and v is not None}, f"inputs[{i}]"))
                for i, d in enumerate(named)]
    return [(DEFAULT_INPUT, caps_mod.audio() if declared is None else read(declared, "input"))]


def routes_inputs(manifest: dict) -> bool:
    """Whether some connection comes from a named input (``$name``)."""
    return any(c["from"].startswith("$") for c in manifest.get("connections", []))


def feeds(manifest: dict) -> list[tuple]:
    """Where the pipeline inputs go, in connection order (of a validated manifest):
    (input index, node index, input port or None, connection index or None)."""
    nodes = {n["id"]: i for i, n in enumerate(manifest["nodes"])}
    connections = manifest.get("connections", [])
    if routes_inputs(manifest):
        names = [name for name, _ in input_caps(manifest)]
        out = []
        for k, c in enumerate(connections):
            if c["from"].startswith("$"):
                node, _, port = c["to"].partition(".")
                out.append((names.index(c["from"][1:]), nodes[node], port or None, k))
        return out
    fed = {c["to"].split(".", 1)[0] for c in connections}
    return [(0, i, None, None) for i, n in enumerate(manifest["nodes"]) if n["id"] not in fed]


def _check_inputs(inputs: list | None) -> None:
    """The named inputs: how many, their names, unique (native: ``check_inputs``)."""
    if inputs is None:
        return
    if not 1 <= len(inputs) <= MAX_INPUTS:
        raise ManifestError("inputs", f"a pipeline has 1 to {MAX_INPUTS} named inputs, got {len(inputs)}")
    for i, d in enumerate(inputs):
        name = d["name"]
        _check_id(name, "input name", f"inputs[{i}].name")
        first = next((j for j in range(i) if inputs[j]["name"] == name), None)
        if first is not None:
            raise ManifestError(f"inputs[{i}].name", f"duplicate input name '{name}' (also inputs[{first}])")


def _check_id(name: str, what: str, path: str) -> None:
    """A node id or input name: 1 to MAX_ID_LEN characters of ``[A-Za-z0-9_-]``."""
    if not 1 <= len(name.encode()) <= MAX_ID_LEN:
        raise ManifestError(path, f"{what} must be 1 to {MAX_ID_LEN} characters")
    if not _ID.match(name):
        raise ManifestError(path, f"{what} '{name}' may only hold ASCII letters, digits, '_' and '-'")


def _check_input_name(inputs: list | None, name: str, i: int) -> None:
    """``$name`` of connection ``i`` names a declared input."""
    if inputs is None:
        raise ManifestError(f"connections[{i}].from",
                            f'no pipeline input \'${name}\': declare it in "inputs" ([{{"name": "{name}"}}])')
    names = [d["name"] for d in inputs]
    if name not in names:
        raise ManifestError(f"connections[{i}].from",
                            f"no pipeline input '${name}'{did_you_mean(name, names)}; inputs: {', '.join(names)}")


def _check_fed(manifest: dict, nodes: list, connections: list) -> None:
    """Every input reaches a node, and with named inputs every node gets items."""
    inputs = manifest.get("inputs") or []
    if not routes_inputs(manifest):
        if len(inputs) > 1:
            raise ManifestError("inputs", f"{len(inputs)} inputs are declared and no connection comes from one; "
                                          f'connect each as {{"from": "$name", "to": ...}}')
        return
    names = [d["name"] for d in inputs]
    used = {c["from"][1:] for c in connections if c["from"].startswith("$")}
    for i, name in enumerate(names):
        if name not in used:
            raise ManifestError(f"inputs[{i}]", f"input '{name}' feeds no node: no connection comes from '${name}'")
    fed = {c["to"].split(".", 1)[0] for c in connections}
    for i, node in enumerate(nodes):
        if node["id"] not in fed:
            raise ManifestError(f"nodes[{i}]", f"node '{node['id']}' gets nothing: with named inputs "
                                               f'("from": "$name"), a node takes only what its connections bring, '
                                               f"and it has none")


def _schema_check(check, value, schema: dict, path: str) -> None:
    """``check`` (shape or bounds) of a manifest field, as a ManifestError with the full path."""
    try:
        check(value, schema, path)
    except SchemaError as e:
        raise ManifestError(e.path, str(e)) from None


def _check_retry(r: dict, path: str) -> None:
    _schema_check(check_bounds, r, POLICIES["retry"], path)
    if r["max_ms"] < r["base_ms"]:
        raise ManifestError(f"{path}.max_ms", f"{r['max_ms']} must be at least base_ms ({r['base_ms']})")
