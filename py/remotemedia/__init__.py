"""remotemedia: fast in-process audio pipelines on a native Rust runtime.

    import numpy as np, remotemedia as rm
    p = rm.Pipeline("demo").add_node("g", "Gain", gain_db=-6.0)
    out = p.run(rm.Audio(np.zeros(480, np.float32), 16000))["g"][0]
"""

import logging as _logging

from . import _contract
from . import nodes as _builtin_nodes  # noqa: F401  (registers the reference nodes)
from .audio import Audio
from .errors import (
    CancelledError,
    CircuitOpenError,
    CycleError,
    GraphError,
    InvalidInputError,
    ManifestError,
    NodeError,
    NodeTimeoutError,
    PluginError,
    QueueFullError,
    RemoteMediaError,
    SessionError,
    StreamClosedError,
    TransientError,
)
from .files import process_file
from .group import GroupOutputs, SessionGroup, VadFrames
from .native import available as native_available
from .node import Emit, Node, ParamError, register_node
from .pipeline import AsyncStream, Pipeline, Stream, inference_threads, set_inference_threads
from .plugins import check_plugin, list_plugins, load_plugin

# A library logs, the application decides where records go: without a handler of its
# own, nothing reaches stderr (not even warnings, through logging's last resort).
_logging.getLogger("remotemedia").addHandler(_logging.NullHandler())

__all__ = [
    "AsyncStream", "Audio", "CancelledError", "CircuitOpenError", "CycleError", "Emit", "GraphError", "GroupOutputs",
    "InvalidInputError", "ManifestError", "Node", "NodeError", "NodeTimeoutError", "ParamError", "Pipeline",
    "PluginError", "QueueFullError", "RemoteMediaError", "SessionError", "SessionGroup", "Stream", "StreamClosedError",
    "TransientError", "VadFrames",
    "check_plugin", "inference_threads", "list_plugins", "load_plugin", "native_available", "process_file", "register_node",
    "set_inference_threads",
]
__version__ = _contract.VERSION
