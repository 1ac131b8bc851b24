"""`Pipeline`: built in Python or loaded from a manifest; runs natively when it can."""

from __future__ import annotations

import copy
from pathlib import Path

from . import manifest as manifest_mod
from . import native
from .audio import Audio
from .errors import InvalidInputError
from .executor import PythonPipeline
from .node import Node, lookup, register_node

RUNTIMES = manifest_mod.RUNTIME_HINTS


class Pipeline:
    """A graph of nodes.

    ``runtime`` uses the vocabulary of ``runtime_hint``: "auto" (native when the library
    is there, else Python), "native" (native or an error), "python" (pure Python). On the
    native runtime, nodes without a native implementation (user Python nodes, or
    ``runtime_hint: "python"``) are called back from the native executor.
    """

    def __init__(self, name: str | None = None, *, metadata: dict | None = None, runtime: str = "auto"):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self._metadata = dict(metadata or {})
        if name is not None:
            self._metadata["name"] = name
        self._nodes: list[dict] = []
        self._connections: list[dict] = []
        self._requested = runtime
        self._impl = None

    # ---- building -------------------------------------------------------------------

    def add_node(self, node_id: str, node_type: str | type[Node], *, runtime_hint: str = "auto",
                 **params) -> Pipeline:
        """Adds a node; ``params`` go into the manifest unchanged. Returns self."""
        if isinstance(node_type, type):
            register_node(node_type)
            node_type = node_type.node_type
        self._nodes.append({"id": node_id, "node_type": node_type, "params": dict(params),
                            "runtime_hint": runtime_hint})
        self._impl = None
        return self

    def connect(self, src: str, dst: str) -> Pipeline:
        """Connects ``src`` (``node`` or ``node.port``) to node ``dst``. Returns self."""
        self._connections.append({"from": src, "to": dst})
        self._impl = None
        return self

    @classmethod
    def from_manifest(cls, source: dict | str | Path, *, runtime: str = "auto") -> Pipeline:
        """Loads a manifest (dict, JSON text or file path) and validates it at once."""
        m = manifest_mod.validate(manifest_mod.load(source))
        p = cls(metadata=m["metadata"], runtime=runtime)
        p._nodes, p._connections = m["nodes"], m["connections"]
        p._compile()
        return p

    def to_manifest(self) -> dict:
        """The manifest as a dict; ``from_manifest(p.to_manifest())`` rebuilds the same pipeline."""
        return copy.deepcopy({"version": manifest_mod.VERSION, "metadata": self._metadata,
                              "nodes": self._nodes, "connections": self._connections})

    # ---- running --------------------------------------------------------------------

    def _compile(self):
        if self._impl is not None:
            return self._impl
        m = manifest_mod.validate(self.to_manifest())
        use_native = self._requested == "native" or (self._requested == "auto" and native.available())
        if use_native and not native.available():
            raise InvalidInputError(f"runtime 'native' requested but the native library is not available "
                                    f"({native.IMPORT_ERROR or 'disabled by REMOTEMEDIA_DISABLE_NATIVE'})")
        if use_native:
            rt = native.NativeRuntime.get()
            # Python types the native registry may need: for "python" hints, and for types
            # with no native twin (so a "native" hint on them gets the precise error).
            for node in m["nodes"]:
                cls = lookup(node["node_type"])
                if cls is not None and (node["runtime_hint"] == "python" or cls.node_type not in rt.native_types):
                    rt.register(cls)
            self._impl = native.NativePipeline(rt, m)
        else:
            self._impl = PythonPipeline(m)
        return self._impl

    @property
    def runtime(self) -> str:
        """"native" when the native executor runs this pipeline, else "python"."""
        return self._compile().runtime

    def node_runtimes(self) -> dict[str, str]:
        """Which implementation each node runs with: {node id: "native" | "python"}."""
        return dict(self._compile().node_runtimes)

    def node_latencies(self) -> dict[str, int]:
        """Each node's worst-case output lag in frames at its output rate, as of its last
        chunk (e.g. a Resample's block plus filter delay; 0 before the first run)."""
        return self._compile().node_latencies()

    def run(self, audio: Audio) -> dict[str, list]:
        """Runs once on ``audio`` (every node fresh, then flushed).

        Returns the items emitted by sink nodes, keyed by node id (or ``node.port`` for a
        port other than the node's first), each a list in emission order.
        """
        if not isinstance(audio, Audio):
            raise InvalidInputError(f"run takes remotemedia.Audio, got {type(audio).__name__}")
        return (self._impl or self._compile()).run(audio)

    def __repr__(self):
        return f"Pipeline({len(self._nodes)} nodes, {len(self._connections)} connections, runtime={self._requested})"

