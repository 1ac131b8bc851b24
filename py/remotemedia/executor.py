"""The pure-Python runtime: same semantics and output order as the native executor."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque

import numpy as np

from . import caps as caps_mod
from ._contract import MAX_HUNG_CALLS, MAX_ITEMS_PER_STEP, MAX_PATHS, NODES
from .audio import DTYPE_OF, Audio
from .errors import (
    CancelledError,
    CircuitOpenError,
    InvalidInputError,
    ManifestError,
    NodeError,
    NodeTimeoutError,
    QueueFullError,
    RemoteMediaError,
    StreamClosedError,
    TransientError,
    did_you_mean,
)
from .graph import check_paths, topological_order, waves
from .isolation import ProcessNode, Stopped
from .manifest import BREAKER_DEFAULT, RETRY_DEFAULT, feeds, input_caps
from .metrics import InputClock, NodeMetrics, PipelineMetrics, SinkMetrics, to_json
from .node import Node, ParamError, emitted, lookup, registered
from .plan import Converters, Plan, check_input_ports, negotiate

# Guards each node's count of timed-out calls still running on their abandoned threads
# (native: executor/call.rs, Slot::hung).
_HUNG_LOCK = threading.Lock()

# The clock and sleep of retries and breakers; tests replace them with fakes.
monotonic = time.monotonic
sleep = time.sleep


class Breaker:
    """The per-node circuit breaker of native/src/executor/policy.rs."""

    def __init__(self, policy: dict):
        self.policy, self.state, self.until, self.consecutive = policy, "closed", 0.0, 0

    def admit(self) -> bool:
        if self.state == "open":
            if monotonic() < self.until:
                return False
            self.state = "half_open"
        return True

    def success(self) -> None:
        self.consecutive, self.state = 0, "closed"

    def failure(self) -> None:
        self.consecutive += 1
        if self.state == "half_open" or self.consecutive >= self.policy["failures"]:
            self.state, self.until = "open", monotonic() + self.policy["cooldown_ms"] / 1000


class Turns:
    """Calls from several threads take turns, as on the native runtime; a call from the
    thread already inside one (a node calling back into its own pipeline) is refused."""

    def __init__(self, what: str):
        self.what, self.lock, self.owner = what, threading.Lock(), None

    def __enter__(self):
        if self.owner == threading.get_ident():
            raise InvalidInputError(f"invalid argument: re-entrant call: this thread is already inside a call on this "
                                    f"{self.what} (a node calling back into it?)")
        self.lock.acquire()
        self.owner = threading.get_ident()

    def __exit__(self, *exc):
        self.owner = None
        self.lock.release()


def _log(level: int, message: str) -> None:
    """A record as the native runtime's executor writes it (target, then message and fields)."""
    LOGGER.log(level, "%s: %s", "remotemedia::executor::call", message)


LOGGER = logging.getLogger("remotemedia")


def backoff(policy: dict, attempt: int, rng) -> float:
    """Seconds before retry ``attempt`` (from 1), as in the native runtime."""
    raw = min(policy["base_ms"] * policy["factor"] ** (attempt - 1), policy["max_ms"])
    return raw * (1 - policy["jitter"] * rng.random()) / 1000


def resolve(node_type: str, hint: str, index: int, node_id: str) -> type[Node]:
    """The Python class for a node, or the ManifestError the native core would raise."""
    cls = lookup(node_type)
    if hint == "native":
        why = "has no native implementation here (the native library is not loaded)"
        raise ManifestError(f"nodes[{index}].node_type", f"node type '{node_type}' {why} (node '{node_id}')")
    if cls is None and node_type in NODES:
        raise ManifestError(f"nodes[{index}].node_type", f"node type '{node_type}' needs the native library: the Python "
                                                         f"runtime has no implementation of it (node '{node_id}')")
    if cls is None:
        hint = did_you_mean(node_type, sorted(registered()))
        raise ManifestError(f"nodes[{index}].node_type", f"unknown node type '{node_type}'{hint} (node '{node_id}')")
    return cls


def create(cls: type[Node], decl: dict, index: int) -> Node | ProcessNode:
    """Instantiates a node as ``decl`` says (in this process or in a child process of its
    own); a rejected param becomes a ManifestError naming it."""
    node_id, params = decl["id"], decl["params"]
    try:
        if decl.get("isolation", "in_process") == "in_process":
            return cls.create(params)
        return ProcessNode(cls, params, decl.get("timeout_ms"))
    except ParamError as e:
        path = f"nodes[{index}].params" + (f".{e.param}" if e.param else "")
        raise ManifestError(path, f"{e} (node '{node_id}', {cls.node_type})") from None
    except TransientError as e:  # the child could not be started
        raise NodeError(f"node '{node_id}' failed in create: {e}", node_id=node_id, operation="create") from None



def create_all(classes: list[type[Node]], decls: list[dict], indices: list[int] | None = None) -> list:
    """Every node of a pipeline (``indices``: their places in the plan's node list, which
    errors name; default 0, 1, ...); when one fails, the isolated ones already started
    are stopped at once (not whenever the failed build is collected)."""
    made: list = []
    try:
        for i, (cls, decl) in enumerate(zip(classes, decls)):
            made.append(create(cls, decl, i if indices is None else indices[i]))
    except BaseException:
        close_all(made)
        raise
    return made


def close_all(nodes: list) -> None:
    """Stops the isolated nodes among ``nodes`` at once."""
    for node in nodes:
        if isinstance(node, ProcessNode):
            node.close()


class PythonPipeline:
    """A validated manifest with Python node instances."""

    runtime = "python"

    def __init__(self, manifest: dict):
        nodes = manifest["nodes"]
        self.manifest = manifest
        self.users = len(nodes)
        user_ids = [n["id"] for n in nodes]
        index = {nid: i for i, nid in enumerate(user_ids)}
        links = []  # (connection index, from, output port, to, input port) of node-to-node connections
        for k, c in enumerate(manifest["connections"]):
            if c["from"].startswith("$"):
                continue
            src, _, port = c["from"].partition(".")
            dst, _, to_port = c["to"].partition(".")
            links.append((k, index[src], port or None, index[dst], to_port or None))
        self.links = links
        edges = [(a, b) for _, a, _, b, _ in links]
        self.user_order = topological_order(user_ids, edges)
        check_paths(user_ids, edges, self.user_order, [node for _, node, _, _ in feeds(manifest)], MAX_PATHS)
        classes = [resolve(n["node_type"], n["runtime_hint"], i, n["id"]) for i, n in enumerate(nodes)]
        for k, a, port, _, _ in links:
            names = caps_mod.output_names(getattr(classes[a], "caps", None), classes[a].outputs, nodes[a].get("params") or {})
            if port is not None and port not in names:
                raise ManifestError(
                    f"connections[{k}].from",
                    f"node '{user_ids[a]}' ({classes[a].node_type}) has no output port '{port}'; "
                    f"ports: {', '.join(names)}")
        self.inputs = input_caps(manifest)  # (name, declared caps) per pipeline input
        self.converters = Converters(lookup)
        self.ids, self.classes, self.decls = user_ids, classes, list(nodes)
        self.nodes = create_all(classes, nodes)  # params are checked before the plan reads them
        try:
            check_input_ports(manifest, classes)
            plan = self._negotiate([caps for _, caps in self.inputs], classes[:], nodes)
        except BaseException:
            close_all(self.nodes)
            raise
        self.name = manifest["metadata"].get("name", "")
        self.node_metrics = [NodeMetrics() for _ in nodes]
        self.pipeline_metrics = PipelineMetrics()
        self.breakers = [Breaker(n.get("circuit_breaker", BREAKER_DEFAULT)) for n in nodes]
        self.rngs = [random.Random(i + 1) for i in range(len(nodes))]
        self.poisoned = [False] * len(nodes)
        self.hung = [[0] for _ in nodes]  # per node, its abandoned calls still running
        self.configured = [False] * len(nodes)  # configured in this stream
        self.plan, self.streaming = None, False
        self.seen = [False] * len(self.inputs)  # inputs pushed since the stream began
        # every node was reset (or just made) and has taken nothing since: a run need not reset them
        self.fresh = True
        self.clock = InputClock()
        self.turn = Turns("pipeline")
        self._apply(plan)

    def _negotiate(self, inputs: list, classes=None, decls=None) -> Plan:
        classes = classes if classes is not None else self.classes[:self.users]
        decls = decls if decls is not None else self.decls[:self.users]
        user_ids = [d["id"] for d in decls]
        return negotiate(user_ids, self.links, self.user_order, classes, {**self.manifest, "nodes": decls},
                         self.converters, inputs)

    def _apply(self, plan: Plan) -> None:
        """Runs ``plan``: its inserted converters are created (a converter the current
        plan has too keeps its instance and state) and every per-node list is remade for
        the graph it runs. Lists are replaced, never changed in place: a session shares
        them until then."""
        if self.plan is None or not plan.same_graph(self.plan):
            u = self.users
            decls = self.decls[:u] + [{"id": nid, "node_type": t, "params": params, "runtime_hint": "auto"}
                                      for nid, t, params in plan.inserted]
            classes = self.classes[:u] + [lookup(t) for _, t, _ in plan.inserted]
            old = self.plan.inserted if self.plan is not None else []
            kept = [u + old.index(ins) if ins in old and u + old.index(ins) < len(self.nodes) else None
                    for ins in plan.inserted]
            made = create_all([c for c, k in zip(classes[u:], kept) if k is None],
                              [d for d, k in zip(decls[u:], kept) if k is None],
                              [u + j for j, k in enumerate(kept) if k is None])
            fresh = iter(made)

            def per_node(values: list, new) -> list:
                return values[:u] + [values[k] if k is not None else new(u + j) for j, k in enumerate(kept)]

            self.nodes = per_node(self.nodes, lambda _: next(fresh))
            self.node_metrics = per_node(self.node_metrics, lambda _: NodeMetrics())
            self.breakers = per_node(self.breakers, lambda _: Breaker(BREAKER_DEFAULT))
            self.rngs = per_node(self.rngs, lambda i: random.Random(i + 1))
            self.poisoned = per_node(self.poisoned, lambda _: False)
            self.hung = per_node(self.hung, lambda _: [0])
            self.configured = per_node(self.configured, lambda _: False)
            self.decls, self.classes = decls, classes
            self.ids = [d["id"] for d in decls]
            edges = [(a, b) for a, _, b, _ in plan.edges]
            self.order = topological_order(self.ids, edges)
            self.waves = waves(len(decls), edges, self.order)
            self.outputs = plan.out_ports
            self.params = [d["params"] for d in decls]
            self.ports = [caps_mod.ports(cls, params).inputs for cls, params in zip(classes, self.params)]
            self.multi_port = [len(p) > 1 for p in self.ports]
            # (node, input port) fed by each output port
            self.routes: list[list[list[tuple[int, int]]]] = [[[] for _ in outs] for outs in self.outputs]
            for a, port, b, to_port in plan.edges:
                to = self.ports[b].index(to_port) if to_port in self.ports[b] else 0
                self.routes[a][self.outputs[a].index(port) if port in self.outputs[a] else 0].append((b, to))
            self.retry = [d.get("retry", RETRY_DEFAULT) for d in decls]
            self.timeouts = [d.get("timeout_ms") for d in decls]
            # nodes whose flush is Node.flush (no tail; an isolated node's proxy has its own)
            self.silent_flush = [type(node).flush is Node.flush for node in self.nodes]
            # nodes with a configure of their own (the others' is Node.configure: nothing to call)
            self.configurable = [i for i, node in enumerate(self.nodes) if type(node).configure is not Node.configure]
            # per pipeline input, the (node, input port) pairs it feeds
            self.feeds_of = [[(node, port) for fed, node, port in plan.feeds if fed == i] for i in range(len(self.inputs))]
            self.step_items = [0] * len(decls)
            self.node_runtimes = {nid: "python" for nid in self.ids}
            self.keys = [[nid if p == 0 else f"{nid}.{port}" for p, port in enumerate(outs)]
                         for nid, outs in zip(self.ids, self.outputs)]
            old = getattr(self, "sinks", {})
            budget = self.manifest.get("latency_budget_ms")
            self.sinks = {}
            for node, _port, key in plan.sinks:
                m = old.get(key) or SinkMetrics()
                m.budget_ms = decls[node].get("latency_budget_ms", budget) if node < u else budget
                self.sinks[key] = m
        # (dtype, channels, rate) of each input planned for, when all are known: one comparison per call
        self.planned_for = [(DTYPE_OF[caps[1]], caps[2], caps[3]) if caps[0] == "audio" and None not in caps else None
                            for caps in plan.inputs]
        self.plan = plan

    @property
    def input_names(self) -> list[str]:
        return [name for name, _ in self.inputs]

    def plan_json(self, inputs: list | None = None) -> dict:
        """The plan in use, or with ``inputs`` (caps per input) the one this pipeline
        would make for them."""
        if inputs is None:
            return self.plan.to_json(self.ids, self.classes, self.input_names, self.ports)
        plan = self._negotiate([self._input_for(i, caps) for i, caps in enumerate(inputs)])
        classes = self.classes[:self.users] + [lookup(t) for _, t, _ in plan.inserted]
        params = self.params[:self.users] + [p for _, _, p in plan.inserted]
        ports = [caps_mod.ports(cls, p).inputs for cls, p in zip(classes, params)]
        return plan.to_json(self.ids[:self.users] + [nid for nid, _, _ in plan.inserted], classes, self.input_names,
                            ports)

    def _input_for(self, i: int, arrived: tuple) -> tuple:
        """Input ``i``'s declared caps, the rest from ``arrived``; a declared field that
        ``arrived`` contradicts is an InvalidInputError."""
        name, declared = self.inputs[i]
        out = list(declared)
        for f, (have, got) in enumerate(zip(declared, arrived)):
            if have is not None and got is not None and have != got:
                field = f"input '{name}' in its \"inputs\"" if self.manifest.get("inputs") is not None else "its \"input\""
                raise InvalidInputError(f"invalid argument: the input is {caps_mod.describe(arrived)}, but the "
                                        f"manifest declares {caps_mod.describe(declared)} ({field})")
            if have is None:
                out[f] = got
        return tuple(out)

    def _plan_inputs(self, inputs: list) -> None:
        """Re-plans when an input's caps are not those planned for; within a stream, a
        plan needing other converters is refused when an input already pushed changed."""
        for i, item in inputs:
            if not (isinstance(item, Audio) and self.planned_for[i] == (item.samples.dtype, item.channels, item.sample_rate)):
                break
        else:
            return
        caps = list(self.plan.inputs)
        for i, item in inputs:
            caps[i] = self._input_for(i, caps_mod.of(item))
        plan = self._negotiate(caps)
        if self.streaming and not plan.same_graph(self.plan):
            for i, _ in inputs:
                if self.seen[i] and caps[i] != self.plan.inputs[i]:
                    raise InvalidInputError(f"invalid argument: this chunk is {caps_mod.describe(caps[i])}, the stream's "
                                            f"earlier ones {caps_mod.describe(self.plan.inputs[i])}, which needs other "
                                            f"converters; flush the stream before changing formats")
        self._apply(plan)

    def only_input(self) -> int:
        """The index of the one pipeline input, for calls that name none."""
        if len(self.inputs) != 1:
            raise InvalidInputError(f"invalid argument: this pipeline has the inputs {', '.join(self.input_names)}: give "
                                    f"each chunk the name of its input")
        return 0

    def _check_inputs(self, inputs: list) -> None:
        """``inputs`` name known inputs, each once, at least one (native ``take_inputs``)."""
        if len(inputs) == 1:
            return  # one input, of an index the caller took from this pipeline
        if not inputs:
            raise InvalidInputError("invalid argument: no input was given")
        for k, (i, _) in enumerate(inputs):
            if any(j == i for j, _ in inputs[:k]):
                raise InvalidInputError(f"invalid argument: input '{self.inputs[i][0]}' is given twice")

    def node_latencies(self) -> dict[str, int]:
        return {nid: node.latency() for nid, node in zip(self.ids, self.nodes)}

    def metrics(self) -> dict:
        with self.turn:
            return self._metrics()

    def _metrics(self) -> dict:
        return to_json(self.name, self.pipeline_metrics,
                       [(nid, n.node_type, b.state, m)
                        for nid, n, b, m in zip(self.ids, self.nodes, self.breakers, self.node_metrics)], self.sinks)

    def _guarded(self, i: int, operation: str, item, method: str, *args):
        """One node call under its breaker, retried with backoff while it fails transiently."""
        breaker = self.breakers[i]
        if not breaker.admit():
            if breaker.policy["on_open"] == "skip":
                if item is None:
                    return []
                self.node_metrics[i].count_out([(0, item)])
                return [(0, item)]
            raise CircuitOpenError(f"node '{self.ids[i]}' is not called: its circuit breaker is open after "
                                   f"repeated failures", node_id=self.ids[i])
        attempt = 0
        node = self.ids[i]
        while True:
            try:
                out = self._measured(i, operation, method, *args)
            except NodeError as e:
                if e.retryable and not self.poisoned[i] and attempt < self.retry[i]["max_retries"]:
                    attempt += 1
                    self.node_metrics[i].retries += 1
                    delay = backoff(self.retry[i], attempt, self.rngs[i])
                    _log(logging.INFO, f"retrying node call node={node} attempt={attempt} delay_ms={int(delay * 1000)} error={e}")
                    sleep(delay)
                    self.last = time.perf_counter_ns()
                    continue
                was = breaker.state
                breaker.failure()
                _log(logging.WARNING, f"node call failed node={node} error={e}")
                if breaker.state == "open" and was != "open":
                    _log(logging.WARNING, f"circuit breaker opened node={node} cooldown_ms={breaker.policy['cooldown_ms']}")
                raise
            except InvalidInputError as e:
                _log(logging.INFO, f"node refused its input node={node} error={e}")
                raise
            if breaker.state == "half_open":
                _log(logging.INFO, f"circuit breaker closed after a successful trial call node={node}")
            breaker.success()
            return out

    def _measured(self, i: int, operation: str, method: str, *args):
        """`_call`, recording time (from ``self.last``, which it advances), failure and
        outputs in the node's metrics."""
        m = self.node_metrics[i]
        started = self.last
        try:
            out = self._call(i, operation, method, *args)
            if self.step_items[i] + len(out) > MAX_ITEMS_PER_STEP:
                raise self._refused(i, operation, f"emitted more than {MAX_ITEMS_PER_STEP} items in one step "
                                                  f"(the item budget)")
        except (NodeError, InvalidInputError):
            m.errors += 1
            raise
        finally:
            self.last = time.perf_counter_ns()
            m.record(self.last - started)
            m.calls += 1
        self.step_items[i] += len(out)
        m.count_out(out)
        return out

    def _refused(self, i: int, operation: str, why: str) -> InvalidInputError:
        """The error for input node ``i`` refused (native FailureKind::InvalidInput): not retried,
        not counted by the breaker."""
        return InvalidInputError(f"node '{self.ids[i]}' failed in {operation}: {why}", node_id=self.ids[i],
                                 operation=operation)

    def _call(self, i: int, operation: str, method: str, *args):
        """Calls ``method`` of node ``i``'s current instance."""
        if self.poisoned[i]:
            raise NodeError(f"node '{self.ids[i]}' failed in {operation}: node is poisoned (an earlier call panicked or "
                            f"left the instance broken) and is not called again", node_id=self.ids[i], operation=operation)
        node = self.nodes[i]
        fn = getattr(node, method)
        isolated = isinstance(node, ProcessNode)
        if self.timeouts[i] is not None and operation not in ("reset", "configure") and not isolated:
            return self._call_with_deadline(i, operation, fn, *args)
        try:
            return (fn(*args) or []) if isolated else emitted(fn(*args), node)
        except Exception as e:
            if getattr(node, "breaks_like_native", False) and not isinstance(e, (RemoteMediaError, Stopped)):
                self.poisoned[i] = True  # the twin's panic: one rule with the native runtime
            raise self._failure(i, operation, e) from (None if isinstance(e, Stopped) else e)

    def _failure(self, i: int, operation: str, e: Exception) -> RemoteMediaError:
        """The error to raise for exception ``e`` out of node ``i``'s ``operation``."""
        if isinstance(e, Stopped):
            return NodeTimeoutError(f"node '{self.ids[i]}' timed out in {operation} after {self.timeouts[i]} ms",
                                    node_id=self.ids[i], operation=operation, retryable=True)
        if isinstance(e, InvalidInputError):
            return self._refused(i, operation, str(e))
        return NodeError(f"node '{self.ids[i]}' failed in {operation}: {str(e) or type(e).__name__}", node_id=self.ids[i],
                         operation=operation, retryable=isinstance(e, TransientError))

    def _call_with_deadline(self, i: int, operation: str, fn, *args):
        """The call on a daemon thread, abandoned after the node's timeout_ms: the node
        gets a fresh instance, and at most MAX_HUNG_CALLS abandoned calls of this node may
        be running, after which its timed calls fail at once (other nodes and pipelines,
        of the same type or not, are not touched)."""
        node, hung = self.nodes[i], self.hung[i]
        with _HUNG_LOCK:
            running = hung[0]
        if running >= MAX_HUNG_CALLS:
            raise NodeError(f"node '{self.ids[i]}' failed in {operation}: {running} of its calls timed out and are still "
                            f"running (at most {MAX_HUNG_CALLS} may be); its timed calls fail at once until one returns",
                            node_id=self.ids[i], operation=operation)
        box: dict = {}

        def target():
            try:
                box["out"] = emitted(fn(*args), node)
            except Exception as e:  # re-raised on the caller's thread
                box["exc"] = e
            with _HUNG_LOCK:
                box["finished"] = True
                if box.get("abandoned"):
                    hung[0] -= 1

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join(self.timeouts[i] / 1000)
        with _HUNG_LOCK:
            abandoned = box["abandoned"] = "finished" not in box
            if abandoned:
                hung[0] += 1
        if abandoned:
            try:  # a fresh instance for what follows, configured as the old one; if none can be made, the node is done
                fresh = type(node).create(self.params[i])
                if self.configured[i]:
                    fresh.configure(self.plan.node_in[i])
                self.nodes[i] = fresh
            except Exception:
                self.poisoned[i] = True
            raise NodeTimeoutError(f"node '{self.ids[i]}' timed out in {operation} after {self.timeouts[i]} ms",
                                   node_id=self.ids[i], operation=operation, retryable=True)
        if "exc" in box:
            e = box["exc"]
            if isinstance(e, InvalidInputError):
                raise self._refused(i, operation, str(e)) from e
            raise self._failure(i, operation, e) from e
        return box["out"]

    def run(self, inputs) -> dict[str, list]:
        """One-shot run of ``inputs`` (the one input's Audio, or (input index, item)
        pairs); returns sink outputs by key, each list in emission order."""
        with self.turn:
            return self._run(inputs)

    def _run(self, inputs: list) -> dict[str, list]:
        results: dict[str, list] = {}
        for key, item in self._run_pairs(inputs):
            results.setdefault(key, []).append(item)
        return results

    def run_into(self, inputs, out: np.ndarray) -> int:
        """One-shot run writing its audio into ``out`` (see ``fitting``); returns frames."""
        with self.turn:
            pairs = self._run_pairs(inputs)
        _, frames, why = fitting(pairs, out)
        if why is not None:
            raise refused("run_into", why, "nothing was written (run returns outputs of any kind)")
        write_audio(pairs, out)
        return frames

    def _run_pairs(self, inputs) -> list[tuple[str, object]]:
        if type(inputs) is Audio:
            inputs = [(0, inputs)]
        self.pipeline_metrics.runs += 1
        self._check_inputs(inputs)
        self.streaming = False
        self._plan_inputs(inputs)
        if not self.fresh:
            self._reset_all()
        if self.configurable:
            self._configure_all()
        return self._step(inputs, flush=False) + self.finish()

    def push(self, inputs) -> list[tuple[str, object]]:
        """Streams chunks (as ``run`` takes them) through the graph in one step; returns
        (key, item) of sink outputs."""
        if type(inputs) is Audio:
            inputs = [(0, inputs)]
        self.pipeline_metrics.pushes += 1
        self._check_inputs(inputs)
        self._plan_inputs(inputs)
        self.streaming = True
        for i, _ in inputs:
            self.seen[i] = True
        if self.configurable:
            self._configure_all()
        return self._step(inputs, flush=False)

    def finish(self) -> list[tuple[str, object]]:
        """Ends the stream: flushes every node in order, then resets every node (whether
        the flush worked or not), so the next stream starts fresh."""
        self.streaming = False
        self.seen = [False] * len(self.inputs)
        try:
            tails = self._step([], flush=True)
        except Exception:
            with contextlib.suppress(Exception):  # the flush's error is the one to report
                self._reset_all()
            raise
        self._reset_all()
        return tails

    def _configure_all(self) -> None:
        """Hands every node not yet configured in this stream the caps the plan gives its
        input ports (``Node.configure``): once per stream, before its first item."""
        for i in self.configurable:
            if not self.configured[i]:
                self._call(i, "configure", "configure", self.plan.node_in[i])
                self.configured[i] = True

    def _reset_all(self) -> None:
        self.fresh = False
        if self.configurable:
            self.configured = [False] * len(self.nodes)
        self.clock.restart()
        for m in self.sinks.values():
            m.restart()
        for i, node in enumerate(self.nodes):
            if self.poisoned[i]:
                self._call(i, "reset", "reset")  # raises: a poisoned node is not called
            try:
                node.reset()
            except Exception as e:
                raise self._failure(i, "reset", e) from e
        self.fresh = True

    def _step(self, inputs: list, flush: bool) -> list[tuple[str, object]]:
        self.fresh = False
        # the running clock: each node call is timed from it and advances it
        started = self.last = time.perf_counter_ns()
        seconds = 0.0
        first = True  # the input clock of sink latency follows the first input given
        for _, item in inputs:
            if isinstance(item, Audio):
                part = len(item.samples) / item.sample_rate
                seconds += part
                if first:
                    self.clock.push(part, started)
            first = False
        try:
            results = self._visit(inputs, flush)
            for key, item in results:  # they left with the last call, which set the clock
                self.sinks[key].timed(item, self.clock, self.last)
            return results
        finally:
            self.pipeline_metrics.wall_ns += time.perf_counter_ns() - started
            self.pipeline_metrics.audio_seconds += seconds

    def _visit(self, inputs: list, flush: bool) -> list[tuple[str, object]]:
        inbox: list[list] = [[] for _ in self.nodes]  # (input port, item) per node
        self.step_items = [0] * len(self.nodes)
        queued = 0  # items queued in this step, against the item budget
        for i, item in inputs:
            for node, port in self.feeds_of[i]:
                inbox[node].append((port, item))
                queued += 1
        results = []
        for wave in self.waves:
            # The nodes of a wave all run, as the native executor runs them concurrently;
            # the first failure in wave order then ends the step.
            done, failure = [], None
            for i in wave:
                try:
                    done.append((i, self._drain(i, inbox[i], flush)))
                except RemoteMediaError as e:
                    failure = failure or e
                inbox[i] = []
            if failure is not None:
                raise failure
            for i, outs in done:
                routes = self.routes[i]
                for port, item in outs:
                    targets = routes[port]
                    queued += len(targets) or 1
                    if queued > MAX_ITEMS_PER_STEP:  # the step fails: what was routed is dropped
                        raise self._refused(i, "flush" if flush else "process", f"its outputs would queue more than "
                                            f"{MAX_ITEMS_PER_STEP} items in this step (the item budget)")
                    if not targets:
                        results.append((self.keys[i][port], item))
                    for t, to in targets:
                        inbox[t].append((to, item))
        return results

    def _drain(self, i: int, items: list, flush: bool) -> list[tuple[int, object]]:
        """Node ``i`` processes its queued items (a node with several input ports through
        ``process_port``), then is flushed if the stream ends."""
        outs = []
        many = self.multi_port[i]
        for port, item in items:
            self.node_metrics[i].count_in(item)
            if many:
                outs += self._guarded(i, "process", item, "process_port", port, item)
            else:
                outs += self._guarded(i, "process", item, "process", item)
        if flush:
            breaker = self.breakers[i]
            if self.silent_flush[i] and breaker.state == "closed" and not breaker.consecutive and not self.poisoned[i]:
                # Node.flush emits nothing and cannot fail: the call is counted, not made
                m, now = self.node_metrics[i], time.perf_counter_ns()
                m.record(now - self.last)
                m.calls += 1
                self.last = now
            else:
                outs += self._guarded(i, "flush", None, "flush")
        return outs

    def group(self, capacity: int, workers: int) -> PythonGroup:
        return PythonGroup(self, capacity)  # sessions run one by one: workers do not apply

    def session(self, capacity: int, overflow: str) -> PythonSession:
        """A stream on fresh instances of the manifest's nodes, planned for the manifest's
        declared inputs (as a native session starts from the manifest, not from the
        plan this pipeline's runs left)."""
        u = self.users
        fresh = PythonPipeline.__new__(PythonPipeline)
        fresh.__dict__.update(self.__dict__)
        fresh.decls, fresh.classes = self.decls[:u], self.classes[:u]
        fresh.nodes = create_all(fresh.classes, fresh.decls)
        fresh.node_metrics = [NodeMetrics() for _ in range(u)]
        fresh.breakers = [Breaker(b.policy) for b in self.breakers[:u]]
        fresh.poisoned, fresh.configured = [False] * u, [False] * u
        fresh.hung = [[0] for _ in range(u)]
        fresh.rngs = [random.Random(i + 1) for i in range(u)]
        fresh.plan, fresh.sinks = None, {}
        try:
            fresh._apply(fresh._negotiate([caps for _, caps in self.inputs]))
        except BaseException:
            close_all(fresh.nodes)
            raise
        fresh.pipeline_metrics = PipelineMetrics()
        fresh.clock = InputClock()
        fresh.seen = [False] * len(self.inputs)
        fresh.fresh = True
        fresh.turn = Turns("session")
        return PythonSession(fresh, capacity, overflow)


class PythonSession:
    """A stream through fresh Python node instances: the same queue semantics as the
    native session (bounded, block or drop_oldest, drops counted)."""

    def __init__(self, pipeline: PythonPipeline, capacity: int, overflow: str):
        self.pipeline, self.capacity, self.overflow = pipeline, max(1, capacity), overflow
        self.queue: deque = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.counters = {"dropped": 0, "chunks_in": 0, "items_out": 0}

    def push(self, inputs, timeout: float) -> None:
        """Pushes chunks (as ``PythonPipeline.run`` takes them) in one step."""
        with self.cond:
            if self.closed:
                raise StreamClosedError("session is closed")
            if self.overflow == "block" and not self.cond.wait_for(
                    lambda: self.closed or len(self.queue) < self.capacity, timeout):
                raise QueueFullError(f"output queue is full ({len(self.queue)} items); "
                                     f"pull outputs or use a longer timeout")
            if self.closed:
                raise CancelledError("cancelled: the session was closed while the push waited for room")
        # Queued under the pipeline's turn, so outputs queue in the order of the pushes.
        with self.pipeline.turn:
            self._enqueue(self.pipeline.push(inputs), chunk=True)

    def flush(self) -> None:
        if self.closed:
            raise StreamClosedError("session is closed")
        with self.pipeline.turn:
            self._enqueue(self.pipeline.finish(), chunk=False)

    def _enqueue(self, items, chunk: bool) -> None:
        with self.cond:
            self.counters["chunks_in"] += chunk
            for item in items:
                if self.overflow == "drop_oldest" and len(self.queue) >= self.capacity:
                    self.queue.popleft()
                    self.counters["dropped"] += 1
                self.queue.append(item)
                self.counters["items_out"] += 1
            self.cond.notify_all()

    def pull(self, timeout: float, max_items: int = 0) -> list[tuple[str, object]]:
        with self.cond:
            self.cond.wait_for(lambda: self.queue or self.closed, timeout)
            n = len(self.queue) if max_items == 0 else min(max_items, len(self.queue))
            items = [self.queue.popleft() for _ in range(n)]
            self.cond.notify_all()
            return items

    def pull_into(self, out: np.ndarray, timeout: float) -> int:
        """Takes queued audio into ``out`` (see ``fitting``); returns frames."""
        with self.cond:
            self.cond.wait_for(lambda: self.queue or self.closed, timeout)
            n, frames, why = fitting(self.queue, out)
            if n == 0 and why is not None:
                raise refused("pull_into", why, "it stays queued (pull returns items of any kind)")
            items = [self.queue.popleft() for _ in range(n)]
            self.cond.notify_all()
        write_audio(items, out)
        return frames

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def stats(self) -> dict:
        with self.cond:
            return {"queue_depth": len(self.queue), **self.counters}

    def metrics(self) -> dict:
        return {**self.pipeline.metrics(), "session": self.stats()}



class PythonGroup:
    """A session group on the Python runtime: the native group's API and semantics
    (ids from 1, never reused; queues that drop their oldest; a failed session loses
    its outputs of that call only), its sessions run one by one, without batching."""

    def __init__(self, pipeline: PythonPipeline, capacity: int):
        self.pipeline, self.capacity = pipeline, capacity
        self.sessions: dict[int, PythonSession] = {}
        self.last = 0
        self.ticks = 0
        # keys of the VAD nodes' "frames" port (port 0), whose events a VAD table takes
        self.vad_keys = {pipeline.keys[i][0] for i, n in enumerate(pipeline.manifest["nodes"]) if n["node_type"] == "VAD"}

    def _unknown(self, session: int) -> InvalidInputError:
        why = "was never opened" if session == 0 or session > self.last else "is closed"
        return InvalidInputError(f"invalid argument: session {session} {why} in this group")

    def open(self) -> int:
        session = self.pipeline.session(self.capacity, "drop_oldest")
        self.last += 1
        self.sessions[self.last] = session
        return self.last

    def close(self, session: int) -> None:
        if self.sessions.pop(session, None) is None:
            raise self._unknown(session)

    def push(self, chunks: list[tuple[int, int, Audio]]) -> dict[int, RemoteMediaError]:
        self.ticks += 1
        by_session: dict[int, list] = {}
        for session, index, audio in chunks:
            by_session.setdefault(session, []).append((index, audio))
        failures: dict[int, RemoteMediaError] = {}
        for session in sorted(by_session):
            s = self.sessions.get(session)
            try:
                if s is None:
                    raise self._unknown(session)
                s.push(by_session[session], 0.0)
            except RemoteMediaError as e:
                failures[session] = e
        return failures

    def push_block(self, sessions: np.ndarray, block: np.ndarray, sample_rate: int) -> dict[int, RemoteMediaError]:
        return self.push([(int(sid), 0, Audio(row, sample_rate)) for sid, row in zip(sessions, block)])

    def flush(self, sessions: list[int]) -> dict[int, RemoteMediaError]:
        failures: dict[int, RemoteMediaError] = {}
        for session in sessions:
            try:
                if session not in self.sessions:
                    raise self._unknown(session)
                self.sessions[session].flush()
            except RemoteMediaError as e:
                failures.setdefault(session, e)
        return failures

    def pull(self, max_per_session: int, vad_table: bool):
        """((session, key, item) each, {VAD key: (session, frame, score, speech) columns})."""
        items, rows = [], {}
        for session in sorted(self.sessions):
            for key, item in self.sessions[session].pull(0.0, max_per_session):
                if vad_table and key in self.vad_keys:
                    first = round(item["start"] * 1000 / item["frame_ms"])
                    for i, (speech, score) in enumerate(zip(item["speech"], item["score"])):
                        rows.setdefault(key, []).append((session, first + i, score, speech))
                else:
                    items.append((session, key, item))
        vad = {key: (np.array([r[0] for r in r_], np.uint64), np.array([r[1] for r in r_], np.uint64),
                     np.array([r[2] for r in r_], np.float32), np.array([r[3] for r in r_], bool))
               for key, r_ in rows.items()}
        return items, vad

    def stats(self) -> dict:
        """As the native group's; nothing is batched here, so no inference passes."""
        return {"sessions": len(self.sessions), "ticks": self.ticks, "inference_passes": 0, "inference_inputs": 0}

    def queued(self, session: int) -> tuple[int, int]:
        if session not in self.sessions:
            raise self._unknown(session)
        stats = self.sessions[session].stats()
        return stats["queue_depth"], stats["dropped"]


def fitting(pairs, out: np.ndarray) -> tuple[int, int, str | None]:
    """How many of the (key, item) ``pairs``, from the first, can be written one after
    another into ``out`` (1-D for mono, else frames × channels): audio of one sink
    output, in ``out``'s dtype and channels, at one rate, that fits. Returns that count,
    their frames, and why the next one cannot follow (None when all can). The twin of
    the native ``fitting`` (``capi/outputs.rs``)."""
    channels = 1 if out.ndim == 1 else out.shape[1]
    taken = frames = 0
    first = rate = None
    for key, item in pairs:
        if not isinstance(item, Audio):
            return taken, frames, f"'{key}' emitted JSON"
        if first is not None and key != first:
            why = f"both '{first}' and '{key}' emitted audio"
        elif item.samples.dtype != out.dtype:
            names = caps_mod.FORMAT_NAMES
            why = f"'{key}' emitted {names[item.samples.dtype]} audio, out is {names[out.dtype]}"
        elif item.channels != channels:
            why = f"'{key}' emitted {item.channels}-channel audio, out has {channels} channel(s)"
        elif rate is not None and item.sample_rate != rate:
            why = f"'{key}' changed sample rate from {rate} to {item.sample_rate} Hz"
        elif frames + item.frames > out.shape[0]:
            why = f"'{key}' emitted {frames + item.frames} frames, out holds {out.shape[0]}"
        else:
            first, rate = key, item.sample_rate
            taken, frames = taken + 1, frames + item.frames
            continue
        return taken, frames, why
    return taken, frames, None


def write_audio(items, out: np.ndarray) -> None:
    """Writes the samples of the audio (key, item) pairs one after another into ``out``."""
    flat, at = out.reshape(-1), 0
    for _, item in items:
        flat[at:at + item.samples.size] = item.samples.reshape(-1)
        at += item.samples.size


def refused(call: str, why: str, then: str) -> InvalidInputError:
    """The error of a ``*_into`` call that could not take an item."""
    return InvalidInputError(f"{call}: {why}; {then}")
