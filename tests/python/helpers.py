"""Helpers shared by the node tests."""

import remotemedia as rm


def one_node(runtime: str, node_id: str, node_type: str, params: dict, chunk: int | None = None) -> rm.Pipeline:
    """A pipeline of one node; with ``chunk``, a Rechunk (tail "emit") in front feeds it
    chunks of that many frames. On the native runtime, checks every node ran natively."""
    m = {"version": "1", "nodes": [{"id": node_id, "node_type": node_type, "params": params}]}
    if chunk:
        m["nodes"].insert(0, {"id": "c", "node_type": "Rechunk", "params": {"frame_samples": chunk, "tail": "emit"}})
        m["connections"] = [{"from": "c", "to": node_id}]
    p = rm.Pipeline.from_manifest(m, runtime=runtime)
    if runtime == "native":
        assert set(p.node_runtimes().values()) == {"native"}
    return p
