"""The facts shared with the native runtime, read from ``contract.json``.

The file is generated from the Rust sources (``native/src/contract.rs``) and checked
against them by ``cargo test``; nothing in it is retyped on the Python side.
"""

from __future__ import annotations

import json
from pathlib import Path

CONTRACT: dict = json.loads((Path(__file__).with_name("contract.json")).read_text())

#: The release version (the Cargo workspace's), shared by the library, the package and the C API.
VERSION: str = CONTRACT["version"]
#: Manifest version, limits and the JSON Schemas of the per-node policies.
MANIFEST: dict = CONTRACT["manifest"]
#: Sample format names (``f32`` …) and their C values.
SAMPLE_FORMATS: dict[str, int] = CONTRACT["sample_formats"]
#: Overflow policy names of a stream, in the order of their C values.
OVERFLOW: tuple[str, ...] = tuple(CONTRACT["overflow"])
#: Log level names and their C values.
LOG_LEVELS: dict[str, int] = CONTRACT["log_levels"]
#: A stream's output queue capacity when none is given, and the largest allowed.
DEFAULT_CAPACITY: int = CONTRACT["session"]["default_capacity"]
MAX_CAPACITY: int = CONTRACT["session"]["max_capacity"]
MAX_WORKERS: int = CONTRACT["session"]["max_workers"]
#: Longest push or pull timeout, in seconds.
MAX_TIMEOUT_S: float = CONTRACT["session"]["max_timeout_ms"] / 1000
#: Largest sample rate, in Hz.
MAX_SAMPLE_RATE: int = CONTRACT["max_sample_rate"]
MAX_CHANNELS: int = CONTRACT["max_channels"]
#: Most pushes the input clock of sink latency remembers (native/src/metrics.rs).
CLOCK_PUSHES: int = CONTRACT["clock_pushes"]
#: Longest name a "did you mean" hint is looked for (native/src/error.rs).
SUGGEST_MAX_CHARS: int = CONTRACT["suggest_max_chars"]
#: Memory budgets (native/src/budget.rs): samples per buffer or node state, items queued
#: per run/push/flush, copies of each input item one node may get (paths from a source).
MAX_BUFFER_SAMPLES: int = CONTRACT["budget"]["max_buffer_samples"]
MAX_ITEMS_PER_STEP: int = CONTRACT["budget"]["max_items_per_step"]
MAX_PATHS: int = CONTRACT["budget"]["max_paths"]
#: Timed-out calls of one node type that may still be running, process-wide.
MAX_HUNG_CALLS: int = CONTRACT["budget"]["max_hung_calls"]
MAX_NODE_PROCESSES: int = CONTRACT["budget"]["max_node_processes"]
#: The operators the native generic model engine runs, and the largest model file.
MODEL_OPS_LIST: tuple[str, ...] = tuple(CONTRACT["model"]["ops"])
MODEL_OPS: frozenset[str] = frozenset(MODEL_OPS_LIST)
MAX_MODEL_BYTES: int = CONTRACT["model"]["max_model_bytes"]
MAX_INFERENCE_THREADS: int = CONTRACT["model"]["max_inference_threads"]
INFERENCE_THREADS_ENV: str = CONTRACT["model"]["inference_threads_env"]
ONNXRUNTIME_ENV: str = CONTRACT["model"]["onnxruntime_env"]
ONNXRUNTIME_MIN_VERSION: str = CONTRACT["model"]["onnxruntime_min_version"]
#: Every built-in node type: ``node_type``, ``description``, ``outputs``, ``params`` (a JSON Schema).
NODES: dict[str, dict] = {n["node_type"]: n for n in CONTRACT["nodes"]}
#: The built-in node types with no Python twin (no maintained Python library gives their
#: results): the Python runtime refuses them at validation.
NATIVE_ONLY: frozenset[str] = frozenset(n for n, spec in NODES.items() if spec["native_only"])


def defaults(schema: dict) -> dict:
    """The ``default`` of every property of an object schema that has one."""
    return {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v}
