"""The pure-Python runtime: same semantics and output order as the native executor."""

from __future__ import annotations

from .audio import Audio
from .errors import ManifestError, NodeError, RemoteMediaError, TransientError
from .graph import topological_order, waves
from .node import Emit, Node, ParamError, lookup


def resolve(node_type: str, hint: str, index: int, node_id: str) -> type[Node]:
    """The Python class for a node, or the ManifestError the native core would raise."""
    cls = lookup(node_type)
    if hint == "native":
        why = "has no native implementation here (the native library is not loaded)"
        raise ManifestError(f"nodes[{index}].node_type", f"node type '{node_type}' {why} (node '{node_id}')")
    if cls is None:
        raise ManifestError(f"nodes[{index}].node_type", f"unknown node type '{node_type}' (node '{node_id}')")
    return cls


def create(cls: type[Node], params: dict, index: int, node_id: str) -> Node:
    """Instantiates a node; a rejected param becomes a ManifestError naming it."""
    try:
        return cls.create(params)
    except ParamError as e:
        path = f"nodes[{index}].params" + (f".{e.param}" if e.param else "")
        raise ManifestError(path, f"{e} (node '{node_id}', {cls.node_type})") from None


def outputs_of(result, node: Node) -> list[tuple[int, object]]:
    """Normalizes what ``process``/``flush`` returned into (port index, item) pairs."""
    if result is None:
        return []
    items = result if isinstance(result, list) else [result]
    pairs = []
    for item in items:
        if isinstance(item, Emit):
            if item.port not in node.outputs:
                raise RemoteMediaError(f"no output port '{item.port}'; ports: {', '.join(node.outputs)}")
            pairs.append((node.outputs.index(item.port), item.data))
        else:
            pairs.append((0, item))
    return pairs


class PythonPipeline:
    """A validated manifest with Python node instances."""

    runtime = "python"

    def __init__(self, manifest: dict):
        nodes = manifest["nodes"]
        self.ids = [n["id"] for n in nodes]
        index = {nid: i for i, nid in enumerate(self.ids)}
        links = []
        for c in manifest["connections"]:
            src, _, port = c["from"].partition(".")
            links.append((index[src], port or None, index[c["to"]]))
        self.order = topological_order(self.ids, [(a, b) for a, _, b in links])
        self.waves = waves(len(nodes), [(a, b) for a, _, b in links], self.order)
        classes = [resolve(n["node_type"], n["runtime_hint"], i, n["id"]) for i, n in enumerate(nodes)]
        self.outputs = [list(cls.outputs) for cls in classes]
        self.routes: list[list[list[int]]] = [[[] for _ in outs] for outs in self.outputs]
        for k, (a, port, b) in enumerate(links):
            if port is not None and port not in self.outputs[a]:
                raise ManifestError(
                    f"connections[{k}].from",
                    f"node '{self.ids[a]}' ({classes[a].node_type}) has no output port '{port}'; "
                    f"ports: {', '.join(self.outputs[a])}")
            self.routes[a][0 if port is None else self.outputs[a].index(port)].append(b)
        self.nodes = [create(cls, n["params"], i, n["id"]) for i, (cls, n) in enumerate(zip(classes, nodes))]
        self.node_runtimes = {nid: "python" for nid in self.ids}
        self.keys = [[nid if p == 0 else f"{nid}.{port}" for p, port in enumerate(outs)]
                     for nid, outs in zip(self.ids, self.outputs)]

    def node_latencies(self) -> dict[str, int]:
        return {nid: node.latency() for nid, node in zip(self.ids, self.nodes)}

    def _call(self, i: int, operation: str, fn, *args):
        try:
            return outputs_of(fn(*args), self.nodes[i])
        except Exception as e:
            raise NodeError(f"node '{self.ids[i]}' failed in {operation}: {e}", node_id=self.ids[i],
                            operation=operation, retryable=isinstance(e, TransientError)) from e

    def run(self, audio: Audio) -> dict[str, list]:
        """One-shot run; returns sink outputs by key, each list in emission order."""
        for i, node in enumerate(self.nodes):
            self._call(i, "reset", node.reset)
        inbox: list[list] = [[] for _ in self.nodes]
        for i in range(len(self.nodes)):
            if not any(i in targets for routes in self.routes for targets in routes):
                inbox[i].append(audio)
        results: dict[str, list] = {}
        for wave in self.waves:
            for i in wave:
                emitted = []
                for item in inbox[i]:
                    emitted += self._call(i, "process", self.nodes[i].process, item)
                emitted += self._call(i, "flush", self.nodes[i].flush)
                inbox[i] = []
                for port, item in emitted:
                    targets = self.routes[i][port]
                    if not targets:
                        results.setdefault(self.keys[i][port], []).append(item)
                    for t in targets:
                        inbox[t].append(item)
        return results
