"""Graph algorithms of the pure-Python runtime, mirroring native/src/executor/graph.rs:
Kahn's order with ties broken by manifest order, the same cycle report, the same waves."""

from __future__ import annotations

import heapq

from .errors import CycleError, ManifestError


def topological_order(ids: list[str], edges: list[tuple[int, int]]) -> list[int]:
    """Kahn's algorithm over node indices; raises CycleError naming a cycle by ids."""
    n = len(ids)
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    indegree = [len(p) for p in pred]
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in succ[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) < n:
        raise CycleError([ids[i] for i in _find_cycle(pred, indegree)])
    return order


def _find_cycle(pred: list[list[int]], indegree: list[int]) -> list[int]:
    start = next(i for i, d in enumerate(indegree) if d > 0)
    path = [start]
    at = start
    while True:
        at = next(p for p in pred[at] if indegree[p] > 0)
        if at in path:
            cycle = list(reversed(path[path.index(at):]))
            return cycle + [cycle[0]]
        path.append(at)


def waves(n: int, edges: list[tuple[int, int]], order: list[int]) -> list[list[int]]:
    """Nodes grouped by depth (one more than the deepest predecessor), sorted by index."""
    pred: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        pred[b].append(a)
    depth = [0] * n
    for node in order:
        depth[node] = max((depth[p] + 1 for p in pred[node]), default=0)
    out: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for node in sorted(order):
        out[depth[node]].append(node)
    return out


def check_paths(ids: list[str], edges: list[tuple[int, int]], order: list[int], fed: list[int], limit: int) -> None:
    """Raises the ManifestError of the native build when some node would get more than
    ``limit`` copies of each input item (one per path from an input; ``fed`` holds the
    node of each feed of a pipeline input)."""
    pred: list[list[int]] = [[] for _ in ids]
    for a, b in edges:
        pred[b].append(a)
    paths = [0] * len(ids)
    for node in fed:
        paths[node] += 1
    for node in order:
        paths[node] += sum(paths[p] for p in pred[node])
        if paths[node] > limit:
            raise ManifestError(f"nodes[{node}]", f"node '{ids[node]}' would get {paths[node]} copies of each input item, "
                                                   f"one per path from a source; the limit is {limit}")
