"""Manifest loading and structural validation for the pure-Python runtime.

Mirrors native/src/manifest: the same rules, the same ``ManifestError.path`` values,
so a manifest fails the same way on either runtime.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import ManifestError

VERSION = "1"
MAX_MANIFEST_BYTES = 1 << 20
MAX_NODES = 1024
MAX_CONNECTIONS = 4096
MAX_ID_LEN = 64
RUNTIME_HINTS = ("auto", "native", "python")

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_TOP = {"version": str, "metadata": dict, "nodes": list, "connections": list}
_NODE = {"id": str, "node_type": str, "params": dict, "runtime_hint": str, "retry": dict, "circuit_breaker": dict,
         "timeout_ms": int}
_RETRY = {"max_retries": int, "base_ms": int, "factor": (int, float), "max_ms": int, "jitter": (int, float)}
_BREAKER = {"failures": int, "cooldown_ms": int, "on_open": str}
RETRY_DEFAULT = {"max_retries": 3, "base_ms": 100, "factor": 2.0, "max_ms": 5000, "jitter": 0.0}
BREAKER_DEFAULT = {"failures": 5, "cooldown_ms": 10000, "on_open": "fail"}
_CONNECTION = {"from": str, "to": str}


def load(source: dict | str | Path) -> dict:
    """A manifest dict from a dict, JSON text, or a path to a JSON file (not validated)."""
    if isinstance(source, dict):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        source = Path(source).read_text()
    if len(source.encode()) > MAX_MANIFEST_BYTES:
        raise ManifestError("$", f"manifest is more than the limit of {MAX_MANIFEST_BYTES} bytes")
    try:
        value = json.loads(source)
    except json.JSONDecodeError as e:
        raise ManifestError("$", str(e)) from None
    if not isinstance(value, dict):
        raise ManifestError("$", "a manifest is a JSON object")
    return value


def _check_fields(obj: Any, fields: dict, required: tuple, path: str) -> None:
    where = path or "$"
    if not isinstance(obj, dict):
        raise ManifestError(where, f"expected an object, got {type(obj).__name__}")
    for key, value in obj.items():
        sub = f"{path}.{key}" if path else key
        if key not in fields:
            raise ManifestError(sub, f"unknown field `{key}`, expected one of {', '.join(fields)}")
        kinds = fields[key] if isinstance(fields[key], tuple) else (fields[key],)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise ManifestError(sub, f"expected {kinds[0].__name__}, got {type(value).__name__}")
    for key in required:
        if key not in obj:
            raise ManifestError(where, f"missing field `{key}`")


def validate(manifest: dict) -> dict:
    """Checks structure, version, limits, ids and connections; returns a normalized copy
    with defaults filled in (``params`` {}, ``runtime_hint`` "auto", ``connections`` [])."""
    _check_fields(manifest, _TOP, ("version", "nodes"), "")
    nodes = manifest["nodes"]
    connections = manifest.get("connections", [])
    for i, node in enumerate(nodes):
        _check_fields(node, _NODE, ("id", "node_type"), f"nodes[{i}]")
        hint = node.get("runtime_hint", "auto")
        if hint not in RUNTIME_HINTS:
            raise ManifestError(f"nodes[{i}].runtime_hint",
                                f"unknown variant `{hint}`, expected one of {', '.join(RUNTIME_HINTS)}")
        if "retry" in node:
            _check_fields(node["retry"], _RETRY, (), f"nodes[{i}].retry")
        if "circuit_breaker" in node:
            _check_fields(node["circuit_breaker"], _BREAKER, (), f"nodes[{i}].circuit_breaker")
            on_open = node["circuit_breaker"].get("on_open", "fail")
            if on_open not in ("fail", "skip"):
                raise ManifestError(f"nodes[{i}].circuit_breaker.on_open",
                                    f"unknown variant `{on_open}`, expected one of fail, skip")
    for i, c in enumerate(connections):
        _check_fields(c, _CONNECTION, ("from", "to"), f"connections[{i}]")
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
        if not 1 <= len(nid.encode()) <= MAX_ID_LEN:
            raise ManifestError(f"nodes[{i}].id", f"node id must be 1 to {MAX_ID_LEN} characters")
        if not _ID.match(nid):
            raise ManifestError(f"nodes[{i}].id",
                                f"node id '{nid}' may only hold ASCII letters, digits, '_' and '-'")
        if nid in seen:
            raise ManifestError(f"nodes[{i}].id", f"duplicate node id '{nid}' (also nodes[{seen[nid]}])")
        seen[nid] = i
        if not node["node_type"]:
            raise ManifestError(f"nodes[{i}].node_type", "node_type is empty")
        if "retry" in node:
            _check_retry({**RETRY_DEFAULT, **node["retry"]}, f"nodes[{i}].retry")
        if "timeout_ms" in node and not 1 <= node["timeout_ms"] <= 3600000:
            raise ManifestError(f"nodes[{i}].timeout_ms", f"{node['timeout_ms']} is outside 1..=3600000")
        if "circuit_breaker" in node:
            _check_breaker({**BREAKER_DEFAULT, **node["circuit_breaker"]}, f"nodes[{i}].circuit_breaker")
    edges = set()
    for i, c in enumerate(connections):
        src = c["from"].split(".", 1)[0]
        if src not in seen:
            raise ManifestError(f"connections[{i}].from", f"no node with id '{src}'")
        if c["to"] not in seen:
            raise ManifestError(f"connections[{i}].to", f"no node with id '{c['to']}'")
        if (c["from"], c["to"]) in edges:
            raise ManifestError(f"connections[{i}]", f"duplicate connection '{c['from']}' -> '{c['to']}'")
        edges.add((c["from"], c["to"]))
    return {
        "version": manifest["version"],
        "metadata": dict(manifest.get("metadata", {})),
        "nodes": [{"id": n["id"], "node_type": n["node_type"], "params": dict(n.get("params", {})),
                   "runtime_hint": n.get("runtime_hint", "auto"),
                   **{k: {**default, **n[k]} for k, default in (("retry", RETRY_DEFAULT),
                                                               ("circuit_breaker", BREAKER_DEFAULT)) if k in n},
                   **({"timeout_ms": n["timeout_ms"]} if "timeout_ms" in n else {})}
                  for n in nodes],
        "connections": [{"from": c["from"], "to": c["to"]} for c in connections],
    }


def _check_retry(r: dict, path: str) -> None:
    checks = [("max_retries", 0 <= r["max_retries"] <= 10, "is more than 10"),
              ("base_ms", 0 <= r["base_ms"] <= 60000, "is more than 60000"),
              ("factor", 1 <= r["factor"] <= 10, "is outside 1..=10"),
              ("max_ms", r["base_ms"] <= r["max_ms"] <= 600000, "must be between base_ms and 600000"),
              ("jitter", 0 <= r["jitter"] <= 1, "is outside 0..=1")]
    for field, ok, why in checks:
        if not ok:
            raise ManifestError(f"{path}.{field}", f"{r[field]} {why}")


def _check_breaker(b: dict, path: str) -> None:
    if not 1 <= b["failures"] <= 1000:
        raise ManifestError(f"{path}.failures", f"{b['failures']} is outside 1..=1000")
    if not 0 <= b["cooldown_ms"] <= 3600000:
        raise ManifestError(f"{path}.cooldown_ms", f"{b['cooldown_ms']} is more than 3600000")
