"""Caps negotiation for the pure-Python runtime: native/src/executor/plan.rs step for
step (its module docs state the algorithm), so both runtimes make identical plans."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from . import caps as caps_mod
from .errors import ManifestError, did_you_mean
from .graph import topological_order
from .manifest import feeds, input_caps


@dataclass
class Plan:
    """The manifest's nodes (indices ``0..n``), then the inserted converters
    (``inserted``: (id, node_type, params)), each node's input port and output caps,
    the edges (from index, output port name or None, to index, input port name or None)
    between them all, and where each pipeline input goes (``feeds``: (input index, node
    index, input port index))."""

    inputs: list
    inserted: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    feeds: list = field(default_factory=list)
    node_in: list = field(default_factory=list)
    node_out: list = field(default_factory=list)
    #: each node's output port names (its class's, or those its params name)
    out_ports: list = field(default_factory=list)
    #: each node's algorithmic latency in ms (None: unknown)
    latency_ms: list = field(default_factory=list)
    #: the worst path from the inputs to each node: (node indices, ms) or None
    paths: list = field(default_factory=list)
    #: every sink output: (node index, port index, result key)
    sinks: list = field(default_factory=list)

    def port_index(self, node: int, port: str | None) -> int:
        """The index of ``node``'s output port ``port`` (None, or a name it lacks: the first)."""
        names = self.out_ports[node]
        return names.index(port) if port is not None and port in names else 0

    def same_graph(self, other: Plan) -> bool:
        return self.inserted == other.inserted and self.edges == other.edges and self.feeds == other.feeds

    def to_json(self, ids: list[str], classes: list, names: list[str], ports: list[list[str]]) -> dict:
        """The plan as native ``Plan::to_json`` gives it (``names``: the pipeline inputs',
        ``ports``: each node's input port names)."""
        users = len(ids) - len(self.inserted)
        nodes = []
        for i, nid in enumerate(ids):
            node = {"id": nid, "node_type": classes[i].node_type, "inserted": i >= users,
                    "input": caps_mod.to_json(self.node_in[i][0]),
                    "inputs": {p: caps_mod.to_json(c) for p, c in zip(ports[i], self.node_in[i])},
                    "outputs": {p: caps_mod.to_json(c) for p, c in zip(self.out_ports[i], self.node_out[i])}}
            if i >= users:
                node["params"] = dict(self.inserted[i - users][2])
            node["latency_ms"] = self.latency_ms[i]
            nodes.append(node)
        edges = []
        for a, port, b, to_port in self.edges:
            index = self.port_index(a, port)
            edges.append({"from": ids[a], "port": self.out_ports[a][index], "to": ids[b],
                          "to_port": ports[b][0] if to_port is None else to_port,
                          "caps": caps_mod.to_json(self.node_out[a][index])})
        feeds = [{"input": names[i], "to": ids[node], "to_port": ports[node][port],
                  "caps": caps_mod.to_json(self.inputs[i])} for i, node, port in self.feeds]
        paths = {key: _path_json(self.paths[node], ids, self.latency_ms) for node, _, key in self.sinks
                 if self.paths[node] is not None}
        return {"input": caps_mod.to_json(self.inputs[0]),
                "inputs": {name: caps_mod.to_json(c) for name, c in zip(names, self.inputs)},
                "nodes": nodes, "edges": edges, "feeds": feeds, "paths": paths}


@dataclass
class _Step:
    cls: type
    role: str
    params: dict

    def describe(self) -> str:
        if not self.params:
            return self.cls.node_type
        shown = ", ".join(f"{k}={caps_mod._show(v)}" for k, v in self.params.items())
        return f"{self.cls.node_type}({shown})"


class Converters:
    """The converter node types (their Python classes)."""

    def __init__(self, lookup):
        self.format, self.downmix, self.resample = (lookup(t) for t in ("FormatConverter", "Downmix", "Resample"))


def negotiate(ids: list[str], links: list[tuple], order: list[int], classes: list, manifest: dict,
              converters: Converters, inputs: list[tuple]) -> Plan:
    """Negotiates the manifest's graph (``links``: (connection index, from index, output
    port or None, to index, input port or None), ports checked) for ``inputs`` (caps
    per pipeline input); with ``auto_convert`` off a needed converter is a
    ManifestError, as is a path over a latency budget."""
    decls, auto_convert = manifest["nodes"], manifest.get("auto_convert", True)
    names = [name for name, _ in input_caps(manifest)]
    n = len(classes)
    plan = Plan(list(inputs), node_in=[[] for _ in range(n)], node_out=[[] for _ in range(n)])
    classes = list(classes)
    ports = [caps_mod.ports(classes[i], decls[i]["params"]) for i in range(n)]
    plan.out_ports = [p.outputs for p in ports]
    shared: dict = {}
    taken: set[str] = set()  # ids of the inserted nodes
    into: list[list] = [[] for _ in range(n)]  # each node's inbound edges, in connection order
    for i, node, port, k in feeds(manifest):
        p = ports[node].input_index(port) if port is not None else 0
        into[node].append((k, ("input", i), None, p or 0))
    for k, a, port, b, to_port in links:
        p = ports[b].input_index(to_port) if to_port is not None else 0
        into[b].append((k, (a, plan.port_index(a, port)), port, p or 0))
    for v in order:
        inbound = sorted(into[v], key=lambda e: -1 if e[0] is None else e[0])  # an implicit feed first
        many = len(ports[v].inputs) > 1
        port_caps: list = [None] * len(ports[v].inputs)
        for k, origin, written, port in inbound:
            slot = 0 if ports[v].aligned else port
            arriving = _carried(plan, origin)
            want = (ports[v].accept[port] if port_caps[slot] is None
                    else _exactly(port_caps[slot], ports[v].accept[port]))
            at = names[0] if k is None else f"connections[{k}]"
            if origin[0] == "input":
                label = names[origin[1]] if manifest.get("inputs") is None else f"${names[origin[1]]}"
            elif origin[1] == 0:
                label = ids[origin[0]]
            else:
                label = f"{ids[origin[0]]}.{plan.out_ports[origin[0]][origin[1]]}"
            target = f"{ids[v]}.{ports[v].inputs[port]}" if many else ids[v]
            accepts = (ports[v].describe_accept(port) if port_caps[slot] is None
                       else f"exactly {caps_mod.describe(port_caps[slot])} (what its first input brings)")
            says = f"'{label}' brings {caps_mod.describe(arriving)}; '{target}' ({classes[v].node_type}) takes {accepts}"
            try:
                steps = _chain(arriving, want, converters)
            except _NoChain as e:
                raise ManifestError(at, f"{says}: {e}") from None
            if steps and not auto_convert:
                fix = " → ".join(s.describe() for s in steps)
                raise ManifestError(at, f"{says}: auto_convert is off; inserting {fix} would fix it")
            caps, tail, key = arriving, origin, ""
            for step in steps:
                key += f"|{step.cls.node_type}{json.dumps(step.params, sort_keys=True)}"
                caps = caps_mod.ports(step.cls, step.params).output(0, caps)
                index = shared.get((origin, key))
                if index is None:
                    index = len(classes)
                    nid = f"{label}→{ids[v]}.{step.role}"
                    while nid in taken:
                        nid += "~"
                    taken.add(nid)
                    plan.inserted.append((nid, step.cls.node_type, dict(step.params)))
                    plan.node_in.append([_carried(plan, tail)])
                    plan.node_out.append([caps])
                    plan.out_ports.append(list(step.cls.outputs))
                    _connect(plan, tail, index, 0, None)
                    classes.append(step.cls)
                    shared[(origin, key)] = index
                tail = (index, 0)
            to_port = ports[v].inputs[port] if port > 0 else None
            if tail[0] != "input" and tail[0] < n and tail == origin:
                plan.edges.append((tail[0], written, v, to_port))
            else:
                _connect(plan, tail, v, port, to_port)
            if port_caps[slot] is None:
                port_caps[slot] = caps
        node_caps = [port_caps[0 if ports[v].aligned else p] or caps_mod.UNKNOWN for p in range(len(ports[v].inputs))]
        plan.node_out[v] = [ports[v].output(p, node_caps[0]) for p in range(len(plan.out_ports[v]))]
        plan.node_in[v] = node_caps
    _add_latency(plan, list(ids) + [nid for nid, _, _ in plan.inserted], classes, manifest)
    return plan


def check_input_ports(manifest: dict, classes: list) -> None:
    """Every connection's input port is one its node has, its params read (native:
    ``check_input_ports``)."""
    index = {n["id"]: i for i, n in enumerate(manifest["nodes"])}
    for k, c in enumerate(manifest["connections"]):
        node, _, port = c["to"].partition(".")
        if not port:
            continue
        i = index[node]
        names = caps_mod.ports(classes[i], manifest["nodes"][i]["params"]).inputs
        if port not in names:
            raise ManifestError(f"connections[{k}].to", f"node '{node}' ({classes[i].node_type}) has no input port "
                                                        f"'{port}'{did_you_mean(port, names)}; ports: {', '.join(names)}")


def _connect(plan: Plan, origin, to: int, port: int, name: str | None) -> None:
    """What leaves ``origin`` goes to node ``to``'s input port ``port`` (named ``name``,
    None for the first): an edge from an output port, or a feed of a pipeline input."""
    if origin[0] == "input":
        plan.feeds.append((origin[1], to, port))
    else:
        plan.edges.append((origin[0], plan.out_ports[origin[0]][origin[1]] if origin[1] > 0 else None, to, name))


# ---- latency (native: executor/latency.rs) -------------------------------------------------

def _add_latency(plan: Plan, all_ids: list[str], classes: list, manifest: dict) -> None:
    """Each node's latency, the worst path to every node and the sink outputs; checks
    the manifest's budgets (native: ``Plan::add_latency``)."""
    decls, n = manifest["nodes"], len(manifest["nodes"])
    for i, cls in enumerate(classes):
        params = decls[i]["params"] if i < n else plan.inserted[i - n][2]
        out = plan.node_out[i][0] if plan.node_out[i] and plan.node_out[i][0][0] == "audio" else None
        rate = out[3] if out is not None and out[3] is not None else plan.node_in[i][0][3]
        plan.latency_ms.append(_to_ms(cls.declared_latency(params, plan.node_in[i][0]), rate))
    edges = [(a, b) for a, _, b, _ in plan.edges]
    starts = {node for _, node, _ in plan.feeds}
    plan.paths = _worst_paths(len(all_ids), edges, topological_order(all_ids, edges), starts, plan.latency_ms)
    fed = {(a, plan.port_index(a, label)) for a, label, _, _ in plan.edges}
    for i, names in enumerate(plan.out_ports):
        for p, port in enumerate(names):
            if (i, p) not in fed:
                plan.sinks.append((i, p, all_ids[i] if p == 0 else f"{all_ids[i]}.{port}"))
    _check_budgets(manifest, plan.paths, [i for i, _, _ in plan.sinks], all_ids, plan.latency_ms)


def _to_ms(frames: int | None, rate: int | None) -> float | None:
    if frames is None:
        return None
    if frames == 0:
        return 0.0
    return None if rate is None else frames * 1000.0 / rate


def _worst_paths(n: int, edges: list[tuple[int, int]], order: list[int], starts: set, ms: list) -> list:
    inbound: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        inbound[b].append(a)
    best: list = [None] * n
    for v in order:
        own = ms[v] or 0.0
        if v in starts:
            best[v] = (own, None)
        for u in inbound[v]:
            if best[u] is not None:
                candidate = best[u][0] + own
                if best[v] is None or candidate > best[v][0]:
                    best[v] = (candidate, u)
    paths = []
    for v in range(n):
        if best[v] is None:
            paths.append(None)
            continue
        nodes = [v]
        while best[nodes[-1]][1] is not None:
            nodes.append(best[nodes[-1]][1])
        paths.append((nodes[::-1], best[v][0]))
    return paths


def _show(ms: float) -> str:
    tenths = math.floor(ms * 10.0 + 0.5)
    return f"{tenths // 10}.{tenths % 10}"


def _path_json(path: tuple, ids: list[str], ms: list) -> dict:
    nodes, total = path
    return {"latency_ms": total, "nodes": [{"id": ids[i], "latency_ms": ms[i]} for i in nodes]}


def _check_budgets(manifest: dict, paths: list, sinks: list[int], ids: list[str], ms: list) -> None:
    budgets = [(i, d["latency_budget_ms"], f"nodes[{i}].latency_budget_ms")
               for i, d in enumerate(manifest["nodes"]) if d.get("latency_budget_ms") is not None]
    if manifest.get("latency_budget_ms") is not None:
        budgets += [(i, manifest["latency_budget_ms"], "latency_budget_ms") for i in sinks]
    for node, budget, at in budgets:
        if paths[node] is None:
            continue
        nodes, total = paths[node]
        if total > budget:
            parts = sorted((i for i in nodes if (ms[i] or 0.0) > 0.0), key=lambda i: -(ms[i] or 0.0))
            largest = ", ".join(f"{ids[i]} {_show(ms[i] or 0.0)} ms" for i in parts[:3])
            route = " → ".join(ids[i] for i in nodes)
            raise ManifestError(at, f"the path input → {route} has {_show(total)} ms of latency, over the budget of "
                                    f"{_show(budget)} ms; the largest parts: {largest}")


def _carried(plan: Plan, origin) -> tuple:
    """What leaves ``origin``: a pipeline input, or a node's output port (native: ``carried``)."""
    return plan.inputs[origin[1]] if origin[0] == "input" else plan.node_out[origin[0]][origin[1]]


def _exactly(caps: tuple, accept: tuple) -> tuple:
    """Rules that take exactly ``caps``; its unknown fields as ``accept`` takes them."""
    return tuple(rule if v is None else ("one", v) for v, rule in zip(caps, accept))


class _NoChain(Exception):
    """No converter chain fits; the message says why."""


def _chain(start: tuple, want: tuple, conv: Converters) -> list[_Step]:
    kind = start[0]
    if kind is not None and not caps_mod.accepts(want[0], kind):
        wanted = "JSON events" if kind == "audio" else "audio"
        raise _NoChain(f"it needs {wanted}, and no converter turns one into the other")
    if kind != "audio":
        return []

    def target(f):
        v = start[f]
        return None if v is None or caps_mod.accepts(want[f], v) else caps_mod.prefer(want[f], v)

    channels, rate = target(2), target(3)
    steps: list[_Step] = []
    state = [start]
    falls = channels is not None and start[2] is not None and channels < start[2]

    def downmix(to):
        now = max(state[0][2] if isinstance(state[0][2], int) else 1, 1)
        params = {} if to == 1 else {"map": [c % now for c in range(to)]}
        return conv.downmix, "downmix", params

    if falls:
        _push(steps, state, *downmix(channels), conv)
    if rate is not None:
        _push(steps, state, conv.resample, "resample", {"target_rate": rate}, conv)
    if not falls and channels is not None:
        _push(steps, state, *downmix(channels), conv)
    fmt = state[0][1]
    if fmt is not None and not caps_mod.accepts(want[1], fmt):
        to = caps_mod.prefer(want[1], fmt)
        _push(steps, state, conv.format, f"to_{to}", {"format": to}, conv)
    left = [caps_mod.FIELDS[f] for f in range(4) if not caps_mod.accepts(want[f], state[0][f])]
    if left:
        raise _NoChain(f"no converter chain gives an accepted {' and '.join(left)}")
    return steps


def _push(steps: list, state: list, cls, role: str, params: dict, conv: Converters) -> None:
    """Appends converter ``cls`` (a FormatConverter first when it does not take the
    current format); raises _NoChain when it still does not take the caps."""
    ports = caps_mod.ports(cls, params)
    fmt = state[0][1]
    if fmt is not None and not caps_mod.accepts(ports.accept[0][1], fmt):
        to = caps_mod.prefer(ports.accept[0][1], fmt)
        fc = {"format": to}
        state[0] = caps_mod.ports(conv.format, fc).output(0, state[0])
        steps.append(_Step(conv.format, f"to_{to}", fc))
    if not ports.accepts(0, state[0]):
        raise _NoChain(f"{cls.node_type} cannot take {caps_mod.describe(state[0])} (it takes {ports.describe_accept(0)})")
    state[0] = ports.output(0, state[0])
    steps.append(_Step(cls, role, params))


# ---- showing a plan --------------------------------------------------------------------

def _in_order(plan: dict) -> list[dict]:
    """The plan's nodes, each after the nodes feeding it (ties: plan order)."""
    ids = [n["id"] for n in plan["nodes"]]
    index = {nid: i for i, nid in enumerate(ids)}
    order = topological_order(ids, [(index[e["from"]], index[e["to"]]) for e in plan["edges"]])
    return [plan["nodes"][i] for i in order]


def _outputs(node: dict) -> str:
    outs = node["outputs"]
    if len(outs) == 1:
        return caps_mod.describe(_caps(next(iter(outs.values()))))
    return "; ".join(f"{port}: {caps_mod.describe(_caps(c))}" for port, c in outs.items())


def _caps(c: dict) -> tuple:
    return tuple(c.get(f) for f in caps_mod.FIELDS)


def to_table(plan: dict) -> str:
    """The plan as a text table: each node (``+`` marks an inserted one) with its type,
    input caps and output caps, in the order data flows."""
    rows = [("", "node", "type", "input", "output")]
    for n in _in_order(plan):
        rows.append(("+" if n["inserted"] else "", n["id"], n["node_type"], caps_mod.describe(_caps(n["input"])), _outputs(n)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"input: {caps_mod.describe(_caps(plan['input']))}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    if any(n["inserted"] for n in plan["nodes"]):
        lines.append("+ inserted by negotiation")
    return "\n".join(line.rstrip() for line in lines)


def to_dot(plan: dict) -> str:
    """The plan as Graphviz dot: caps on the edges, inserted nodes dashed."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace('"', '\\"')

    def q(s: str) -> str:
        return f'"{esc(s)}"'

    lines = ["digraph plan {", "  rankdir=LR;", '  node [shape=box, fontname="sans-serif"];',
             '  "(input)" [shape=plaintext];']
    fed = {e["to"] for e in plan["edges"]}
    for n in plan["nodes"]:
        style = ", style=dashed" if n["inserted"] else ""
        lines.append(f"  {q(n['id'])} [label=\"{esc(n['id'])}\\n{esc(n['node_type'])}\"{style}];")
    for n in plan["nodes"]:
        if n["id"] not in fed:
            lines.append(f"  \"(input)\" -> {q(n['id'])} [label={q(caps_mod.describe(_caps(plan['input'])))}];")
    for e in plan["edges"]:
        lines.append(f"  {q(e['from'])} -> {q(e['to'])} [label={q(e['port'] + ': ' + caps_mod.describe(_caps(e['caps'])))}];")
    lines.append("}")
    return "\n".join(lines)
