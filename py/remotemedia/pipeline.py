"""`Pipeline`: built in Python or loaded from a manifest; runs natively when it can."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from . import caps as caps_mod
from . import manifest as manifest_mod
from . import native
from ._contract import DEFAULT_CAPACITY, MAX_CAPACITY, MAX_TIMEOUT_S, MAX_WORKERS, OVERFLOW
from ._schema import SchemaError, check_bounds, check_shape
from .audio import FORMAT_OF, Audio
from .errors import InvalidInputError, ManifestError, did_you_mean
from .executor import PythonPipeline
from .group import SessionGroup
from .inputs import call_inputs
from .model import BUDGET, MAX_INFERENCE_THREADS, with_package_models
from .node import Node, ParamError, lookup, register_node, registered

RUNTIMES = manifest_mod.RUNTIME_HINTS
_COMPILING = threading.RLock()


class Pipeline:
    """A graph of nodes.

    ``runtime`` uses the vocabulary of ``runtime_hint``: "auto" (native when the library
    is there, else Python), "native" (native or an error), "python" (pure Python). On the
    native runtime, nodes without a native implementation (user Python nodes, or
    ``runtime_hint: "python"``) are called back from the native executor.
    """

    def __init__(self, name: str | None = None, *, metadata: dict | None = None, runtime: str = "auto",
                 input: dict | None = None, inputs: list[dict] | None = None, auto_convert: bool | None = None,
                 latency_budget_ms: float | None = None):
        """``input`` declares what the pipeline input carries (``{"format", "channels",
        "sample_rate"}``, each optional), so the caps plan is made before any data flows;
        ``inputs`` declares named inputs instead (``[{"name": "mic", ...caps}, ...]``),
        which ``connect("$mic", node)`` routes; ``auto_convert=False`` makes every caps
        mismatch an error instead of a converter; ``latency_budget_ms`` bounds the
        algorithmic latency from the inputs to every sink."""
        if runtime not in RUNTIMES:
            raise InvalidInputError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self._metadata = dict(metadata or {})
        # the manifest's "input", "inputs", "auto_convert" and "latency_budget_ms", when given
        self._negotiation = {k: v for k, v in (("input", input), ("inputs", inputs), ("auto_convert", auto_convert),
                                                ("latency_budget_ms", latency_budget_ms)) if v is not None}
        if name is not None:
            self._metadata["name"] = name
        self._nodes: list[dict] = []
        self._connections: list[dict] = []
        self._requested = runtime
        self._impl = None
        # The JSON text of a manifest loaded as given, for the native runtime (None once changed).
        self._text: str | None = None

    # ---- building -------------------------------------------------------------------

    def add_node(self, node_id: str, node_type: str | type[Node], *, runtime_hint: str = "auto",
                 retry: dict | None = None, circuit_breaker: dict | None = None, timeout_ms: int | None = None,
                 isolation: str | None = None, latency_budget_ms: float | None = None, **params) -> Pipeline:
        """Adds a node; ``params`` go into the manifest unchanged, as do the optional
        ``retry``, ``circuit_breaker`` and ``timeout_ms`` policies and ``isolation``
        ("in_process", the default, or "process": the node runs in a child process of
        its own, so a crash or hang there fails only its call), and ``latency_budget_ms``
        (the most algorithmic latency from the input to this node). The node type and its
        params are checked at once, as ``from_manifest`` checks them (ManifestError
        naming ``nodes[i]``). Returns self."""
        if isinstance(node_type, type):
            register_node(node_type)
            node_type = node_type.node_type
        node = {"id": node_id, "node_type": node_type, "params": dict(params), "runtime_hint": runtime_hint}
        _check_params(node, len(self._nodes))
        node.update({k: dict(v) for k, v in (("retry", retry), ("circuit_breaker", circuit_breaker)) if v is not None})
        if timeout_ms is not None:
            node["timeout_ms"] = timeout_ms
        if isolation is not None:
            node["isolation"] = isolation
        if latency_budget_ms is not None:
            node["latency_budget_ms"] = latency_budget_ms
        self._nodes.append(node)
        self._impl = self._text = None
        return self

    def connect(self, src: str, dst: str) -> Pipeline:
        """Connects ``src`` (``node``, ``node.port`` for an output port, or ``$name`` for a
        named pipeline input) to ``dst`` (``node``, or ``node.port`` for an input port).
        Returns self."""
        self._connections.append({"from": src, "to": dst})
        self._impl = self._text = None
        return self

    @classmethod
    def from_manifest(cls, source: dict | str | Path, *, runtime: str = "auto") -> Pipeline:
        """Loads a manifest (dict, JSON text or file path) and validates it at once: on
        the native runtime the native side alone validates it (its errors are the
        errors), on the Python runtime the Python side."""
        loaded, text = manifest_mod.load(source)
        p = cls(runtime=runtime)
        if p._native():
            impl = p._native_pipeline(loaded, text)
            m = manifest_mod.normalize(loaded)
        else:
            m = manifest_mod.validate(loaded)
            impl = PythonPipeline(m)
        p._metadata, p._nodes, p._connections = m["metadata"], m["nodes"], m["connections"]
        p._negotiation = {k: m[k] for k in ("input", "inputs", "auto_convert", "latency_budget_ms") if k in m}
        p._text, p._impl = text, impl
        return p

    def to_manifest(self) -> dict:
        """The manifest as a dict; ``from_manifest(p.to_manifest())`` rebuilds the same pipeline."""
        return copy.deepcopy({"version": manifest_mod.VERSION, "metadata": self._metadata,
                              "nodes": self._nodes, "connections": self._connections, **self._negotiation})

    # ---- running --------------------------------------------------------------------

    def _compile(self):
        if self._impl is not None:
            return self._impl
        with _COMPILING:  # threads asking at once build it once
            if self._impl is None:
                self._impl = self._build()
            return self._impl

    def _build(self):
        if self._text is None:
            _, self._text = manifest_mod.load(self.to_manifest())
        if self._native():
            return self._native_pipeline(self.to_manifest(), self._text)
        return PythonPipeline(manifest_mod.validate(self.to_manifest()))

    def _native(self) -> bool:
        """Whether this pipeline runs on the native runtime (an error when it must and cannot)."""
        use_native = self._requested == "native" or (self._requested == "auto" and native.available())
        if use_native and not native.available():
            raise InvalidInputError(f"runtime 'native' requested but the native library is not available "
                                    f"({native.IMPORT_ERROR or 'disabled by REMOTEMEDIA_DISABLE_NATIVE'})")
        return use_native

    @staticmethod
    def _native_pipeline(manifest: dict, text: str):
        """The native pipeline of ``manifest`` (as loaded, not yet validated: the native
        side validates it) whose JSON is ``text``."""
        rt = native.NativeRuntime.get()
        nodes = manifest.get("nodes")
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            return native.NativePipeline(rt, text)  # the native side says what is wrong
        # Python types the native registry may need: for "python" hints, and for types
        # with no native twin (so a "native" hint on them gets the precise error).
        for node in nodes:
            node_type = node.get("node_type")
            cls = lookup(node_type) if isinstance(node_type, str) else None
            if cls is not None and (node.get("runtime_hint") == "python" or cls.node_type not in rt.native_types):
                rt.register(cls)
        filled = with_package_models(manifest)
        return native.NativePipeline(rt, text if filled["nodes"] == nodes else json.dumps(filled))

    @property
    def runtime(self) -> str:
        """"native" when the native executor runs this pipeline, else "python"."""
        return self._compile().runtime

    def node_runtimes(self) -> dict[str, str]:
        """Which implementation each node runs with: {node id: "native" | "python"}."""
        return dict(self._compile().node_runtimes)

    def metrics(self, format: str = "json"):
        """Per-node and per-pipeline metrics of the one-shot runs: a dict shaped as
        docs/metrics.schema.json, or with ``format="prometheus"`` the Prometheus text."""
        return _format_metrics(self._compile().metrics(), format)

    @property
    def inputs(self) -> list[str]:
        """The names of the pipeline's inputs: its manifest's ``inputs``, else ``["input"]``."""
        return list(self._compile().input_names)

    def plan(self, input: Audio | dict | None = None) -> dict:
        """The caps plan: every node (the manifest's, then the converters negotiation
        inserted, marked ``"inserted": True``) with its input ports' and output caps,
        every edge with its caps, and where each input goes (``feeds``). Without
        ``input``, the plan in use (made for the manifest's ``input``/``inputs`` and
        remade whenever a chunk's caps differ); with an :class:`Audio` or a ``{"format",
        "channels", "sample_rate"}`` dict (for named inputs, a dict of those by input
        name), the plan this pipeline would make for such input (it keeps its own).
        Raises ManifestError when none fits."""
        impl = self._compile()
        if input is None:
            return impl.plan_json()
        names = impl.input_names
        by_name = input if isinstance(input, dict) and set(input) <= set(names) and self._named() else None
        if by_name is None:
            if self._named():
                raise InvalidInputError(f"plan of named inputs takes a dict keyed by input name ({', '.join(names)})")
            by_name = {names[0]: input}
        return impl.plan_json([_caps_of(by_name.get(name, {})) for name in names])

    def _named(self) -> bool:
        return "inputs" in self._negotiation

    def node_latencies(self) -> dict[str, int]:
        """Each node's worst-case output lag in frames at its output rate, as of its last
        chunk (e.g. a Resample's block plus filter delay; 0 before the first run)."""
        return self._compile().node_latencies()

    def run(self, audio: Audio | dict[str, Audio], *, input: str | None = None) -> dict[str, list]:
        """Runs once on ``audio`` (every node fresh, then flushed): an :class:`Audio`
        for the pipeline's one input (or the input named ``input``), or a dict of Audio
        by input name for several.

        Returns the items emitted by sink nodes, keyed by node id (or ``node.port`` for a
        port other than the node's first), each a list in emission order.
        """
        impl = self._impl or self._compile()
        if input is None and type(audio) is Audio and len(impl.input_names) == 1:
            audio.check_layout()
            return impl.run(audio)
        return impl.run(call_inputs(impl.input_names, audio, input, "run"))

    def run_into(self, audio: Audio | dict[str, Audio], out: np.ndarray, *, input: str | None = None) -> int:
        """Runs once like ``run`` and writes the run's audio into ``out`` instead of
        returning it: the fast path for audio-to-audio pipelines (no output objects).

        ``out`` is a writeable C-contiguous array of the output's dtype, 1-D for mono or
        (frames, channels); the sink's items are written one after another from its
        start. Returns the frames written. Raises InvalidInputError, writing nothing,
        when the run's outputs are not all audio of one sink output in ``out``'s dtype
        and channels, or do not fit (a run depends only on its input: repeat it with a
        fitting ``out``).
        """
        impl = self._impl or self._compile()
        if input is None and type(audio) is Audio and len(impl.input_names) == 1:
            audio.check_layout()
            inputs = audio
        else:
            inputs = call_inputs(impl.input_names, audio, input, "run_into")
        _check_out(out)
        return impl.run_into(inputs, out)

    def stream(self, capacity: int = DEFAULT_CAPACITY, overflow: str = OVERFLOW[0]) -> Stream:
        """A streaming session on fresh instances of this pipeline's nodes."""
        if overflow not in OVERFLOW:
            raise InvalidInputError(f"overflow must be one of {', '.join(OVERFLOW)}, got {overflow!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidInputError(f"capacity must be an integer from 1 to {MAX_CAPACITY}, got {capacity!r}")
        impl = self._compile()
        return Stream(impl.session(capacity, overflow), impl.input_names)

    def sessions(self, capacity: int = DEFAULT_CAPACITY, *, workers: int = 1,
                 max_delay_ms: float | None = None) -> SessionGroup:
        """A group of sessions of this pipeline, driven by one call per tick (see
        :class:`SessionGroup`); each session's queue holds ``capacity`` items. A push
        runs on the calling thread, or on ``workers`` threads (the native runtime;
        the Python runtime runs sessions one by one). ``max_delay_ms`` bounds how long
        an ``apush`` waits for the other sessions' chunks (None: the loop's next turn)."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidInputError(f"capacity must be an integer from 1 to {MAX_CAPACITY}, got {capacity!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise InvalidInputError(f"workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}")
        if max_delay_ms is not None and (isinstance(max_delay_ms, bool) or not isinstance(max_delay_ms, (int, float))
                                         or not 0 <= max_delay_ms <= MAX_TIMEOUT_S * 1000):
            raise InvalidInputError(f"max_delay_ms must be None or a number of ms from 0, got {max_delay_ms!r}")
        impl = self._compile()
        return SessionGroup(impl.group(capacity, workers), impl.input_names, max_delay_ms)

    def astream(self, capacity: int = DEFAULT_CAPACITY, overflow: str = OVERFLOW[0]) -> AsyncStream:
        """``async with pipeline.astream() as s: await s.push(a); async for key, item in s: ...``"""
        return AsyncStream(self.stream(capacity, overflow), capacity, overflow)

    def process(self, chunks: Iterable[Audio]) -> Iterator[tuple[str, object]]:
        """Streams ``chunks`` and yields (key, item) outputs as they come, tails last."""
        with self.stream() as s:
            for chunk in chunks:
                s.push(chunk)
                yield from s.pull()
            s.flush()
            yield from s.pull()

    def __repr__(self):
        return f"Pipeline({len(self._nodes)} nodes, {len(self._connections)} connections, runtime={self._requested})"



def set_inference_threads(threads: int) -> None:
    """Sets the process-wide inference thread budget: at most ``threads`` model calls
    (every engine, both runtimes) run at once in the process, each on its caller's
    thread; callers over it wait. 1 to 1024; the default is
    ``REMOTEMEDIA_INFERENCE_THREADS``, else the CPUs the process may use."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_INFERENCE_THREADS:
        raise InvalidInputError(f"the inference thread budget must be an integer 1..={MAX_INFERENCE_THREADS}, not {threads!r}")
    native.set_inference_threads(threads)
    BUDGET.set(threads)


def inference_threads() -> int:
    """The process-wide inference thread budget now (see ``set_inference_threads``)."""
    return BUDGET.threads()


def _caps_of(value) -> tuple:
    """The caps of an :class:`Audio` or of a ``{"format", "channels", "sample_rate"}`` dict."""
    if isinstance(value, Audio):
        return caps_mod.of(value)
    try:
        return caps_mod.from_json(value)
    except ValueError as e:
        raise InvalidInputError(f"input caps: {e.args[0]}: {e.args[1]}" if e.args[0] else f"input caps: {e.args[1]}") from None


def _check_out(out) -> None:
    """Raises InvalidInputError unless ``out`` can take audio written in place."""
    if not isinstance(out, np.ndarray) or out.dtype not in FORMAT_OF or not 1 <= out.ndim <= 2:
        got = f"a {out.ndim}-D {out.dtype} array" if isinstance(out, np.ndarray) else type(out).__name__
        raise InvalidInputError(f"out must be a 1-D or 2-D numpy array of float32, int16, int32 or float64, got {got}")
    flags = out.flags
    if not (flags.c_contiguous and flags.writeable and flags.aligned):
        raise InvalidInputError("out must be writeable, C-contiguous and aligned")


class Stream:
    """A streaming session: push chunks, pull outputs as (key, item) pairs.

    Nodes run inside ``push`` on the calling thread (natively with the GIL released).
    Outputs wait in a bounded queue of ``capacity`` items; when it is full, ``overflow``
    "block" makes ``push`` wait up to its timeout for a consumer (then raise
    QueueFullError), and "drop_oldest" drops the oldest items, counted in ``stats()``.
    ``flush`` ends the stream and queues every node's tail; ``close`` releases it.
    """

    def __init__(self, impl, inputs: list[str]):
        self._impl = impl
        self._inputs = inputs  # the pipeline's input names

    def push(self, audio: Audio | dict[str, Audio], timeout: float = 10.0, *, input: str | None = None) -> None:
        """Pushes a chunk: an :class:`Audio` for the pipeline's one input (or the input
        named ``input``), or a dict of Audio by input name, pushed in one step. Inputs
        may be pushed apart, from different threads, in different chunk sizes: a node
        that needs all its inputs (``Mix``) holds what came first. Nothing is queued
        when the chunk is refused."""
        if input is None and type(audio) is Audio and len(self._inputs) == 1:
            audio.check_layout()
            self._impl.push(audio, _seconds(timeout))
        else:
            self._impl.push(call_inputs(self._inputs, audio, input, "push"), _seconds(timeout))

    def pull(self, timeout: float = 0.0, max_items: int = 0) -> list[tuple[str, object]]:
        """Queued outputs in order (all, or at most ``max_items``), waiting up to
        ``timeout`` seconds for the first; empty on timeout."""
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
            raise InvalidInputError(f"max_items must be a non-negative integer, got {max_items!r}")
        return self._impl.pull(_seconds(timeout), max_items)

    def pull_into(self, out: np.ndarray, timeout: float = 0.0) -> int:
        """Takes queued audio into ``out`` instead of returning items: the fast path for
        audio-to-audio streams. From the front of the queue, the items of one sink
        output in ``out``'s dtype and channels, one after another while they fit,
        waiting up to ``timeout`` seconds for the first. ``out`` is as in
        ``Pipeline.run_into``. Returns the frames written (0 on timeout). Items that
        cannot follow stay queued; when the first queued item cannot be taken (JSON,
        another dtype or channel count, or too long), raises InvalidInputError and
        takes nothing."""
        _check_out(out)
        return self._impl.pull_into(out, _seconds(timeout))

    def flush(self) -> None:
        self._impl.flush()

    def close(self) -> None:
        self._impl.close()

    def stats(self) -> dict:
        """{"queue_depth", "dropped", "chunks_in", "items_out"}."""
        return self._impl.stats()

    def metrics(self, format: str = "json"):
        """This stream's node metrics plus a "session" object with its queue counters;
        readable at any time. ``format="prometheus"`` gives Prometheus text."""
        return _format_metrics(self._impl.metrics(), format)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: A push or flush whose recent cost (a moving average of its own duration) is below
#: this runs on the event loop itself: handing it to a worker thread and back costs
#: more than that (about 80 µs of CPU a push, benchmarks/bench_asyncio.py). Costlier
#: work runs on a worker thread.
INLINE_S = 200e-6


class AsyncStream:
    """The asyncio form of :class:`Stream`.

    A push (or flush) runs on the event loop when it is cheap, with no thread hop: when
    this stream's recent pushes took under ``INLINE_S`` each (a moving average; the
    first push runs inline) and, with overflow "block", the output queue is under half
    full (so it cannot wait for room). Other pushes run in a worker thread (native
    calls release the GIL). So the loop is blocked by one push at most, and by a costly
    one only until the average says so; an inline push then yields to the loop once,
    so a producer pushing in a tight loop does not starve other tasks.

    ``async for key, item in stream`` yields outputs until the stream is closed and
    drained; it waits on this stream's pushes, not on a thread (outputs only appear
    when a push or flush runs; push through this object, not its inner stream).

    A pending ``async for`` cannot hang on a failed producer: :meth:`produce` runs the
    producer for you, :meth:`fail` (or an exception leaving ``async with``) ends the
    stream with an error, and :meth:`aclose` from any task ends it. Items queued before
    the end are still handed over first.
    """

    def __init__(self, stream: Stream, capacity: int = DEFAULT_CAPACITY, overflow: str = OVERFLOW[0]):
        self._stream = stream
        self._buffer: list = []
        self._closed = False
        self._error: BaseException | None = None
        self._producer: asyncio.Task | None = None
        self._room = capacity // 2 if overflow == "block" else None
        self._cost = 0.0  # moving average of a push's seconds: the first push runs inline
        self._depth = 0  # the output queue's depth after the last push
        self._ready = asyncio.Event()  # set when a push or flush queued something, or at the end

    def _inline(self) -> bool:
        # the depth after the last push bounds the depth now (only pulls happened since)
        return self._cost < INLINE_S and (self._room is None or self._depth < self._room)

    def _done(self, seconds: float) -> None:
        """After a push or flush: its cost noted; the consumer woken when there is
        something to take (or the stream ended)."""
        self._cost = 0.8 * self._cost + 0.2 * seconds
        self._depth = 0 if self._closed else self._stream.stats()["queue_depth"]
        if self._depth or self._closed:
            self._ready.set()

    async def _work(self, fn) -> None:
        """Runs ``fn`` (a push or flush) inline or in a worker thread, timed."""
        start = time.perf_counter()
        if self._inline():
            try:
                fn()
            finally:
                self._done(time.perf_counter() - start)
            await asyncio.sleep(0)
            return
        spent = [0.0]

        def timed():
            began = time.perf_counter()
            try:
                fn()
            finally:
                spent[0] = time.perf_counter() - began

        try:
            await asyncio.get_running_loop().run_in_executor(None, timed)
        finally:
            self._done(spent[0])

    async def push(self, audio: Audio | dict[str, Audio], timeout: float = 10.0, *, input: str | None = None) -> None:
        if self._inline():  # _work's inline branch, spelled out: a partial and one more coroutine cost 0.9 µs a push (measured)
            start = time.perf_counter()
            try:
                self._stream.push(audio, timeout, input=input)
            finally:
                self._done(time.perf_counter() - start)
            await asyncio.sleep(0)  # other tasks run between two pushes of a tight loop
        else:
            await self._work(functools.partial(self._stream.push, audio, timeout, input=input))

    async def flush(self) -> None:
        await self._work(self._stream.flush)

    async def aclose(self) -> None:
        """Closes the stream: ``async for`` ends once the queued items are taken."""
        self._closed = True
        self._stream.close()
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """Ends the stream because its producer failed: ``async for`` (pending or later)
        raises ``error`` once the queued items are taken."""
        if self._error is None:
            self._error = error
        self._closed = True
        self._stream.close()
        self._ready.set()

    def produce(self, chunks) -> asyncio.Task:
        """Starts a task that pushes every chunk of ``chunks`` (an iterable or async
        iterable of :class:`Audio`), then flushes and closes the stream. If the producer
        fails, the stream fails with its exception (see :meth:`fail`); if it is
        cancelled, the stream just closes. Returns the task."""
        if self._producer is not None:
            raise InvalidInputError("this stream already has a producer")
        self._producer = asyncio.get_running_loop().create_task(self._produce(chunks))
        return self._producer

    async def _produce(self, chunks) -> None:
        try:
            if hasattr(chunks, "__aiter__"):
                async for chunk in chunks:
                    await self.push(chunk)
            else:
                for chunk in chunks:
                    await self.push(chunk)
            await self.flush()
        except asyncio.CancelledError:
            await self.aclose()
            raise
        except Exception as e:  # handed to the consumer, not lost
            if not self._closed:  # a close by the consumer is not the producer's failure
                self.fail(e)
        finally:
            await self.aclose()

    def stats(self) -> dict:
        return self._stream.stats()

    def metrics(self, format: str = "json"):
        return self._stream.metrics(format)

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self):
        while not self._buffer:
            self._ready.clear()
            self._buffer = self._stream.pull(0)
            if self._buffer:
                break
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            await self._ready.wait()
        return self._buffer.pop(0)

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, kind, error, traceback) -> None:
        if error is not None and not isinstance(error, (asyncio.CancelledError, GeneratorExit)):
            self.fail(error)
        else:
            await self.aclose()
        producer = self._producer
        if producer is not None and not producer.done():
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)


def _check_params(node: dict, index: int) -> None:
    """What building would say of a node's type and params (not the checks its
    constructor makes), said at once: a ManifestError at ``nodes[index]``."""
    node_id, node_type, params = node["id"], node["node_type"], node["params"]
    if not isinstance(node_type, str) or not isinstance(node_id, str):
        return  # the manifest's own checks name these at build time
    cls = lookup(node_type)
    native_types = {t["node_type"]: t["params"] for t in native.NativeRuntime.get().node_types()} if native.available() else {}
    schema = native_types.get(node_type)
    if cls is None and schema is None:
        known = sorted(set(registered()) | set(native_types))
        raise ManifestError(f"nodes[{index}].node_type",
                            f"unknown node type '{node_type}'{did_you_mean(node_type, known)} (node '{node_id}')")
    try:
        if cls is not None:
            cls.check_params(params)
        elif schema is not None:
            check_shape(params, schema, "")
            check_bounds(params, schema, "")
    except ParamError as e:
        path = f"nodes[{index}].params" + (f".{e.param}" if e.param else "")
        raise ManifestError(path, f"{e} (node '{node_id}', {node_type})") from None
    except SchemaError as e:
        raise ManifestError(f"nodes[{index}].params" + (f".{e.path}" if e.path else ""),
                            f"{e} (node '{node_id}', {node_type})") from None


def _seconds(timeout) -> float:
    """A timeout in seconds, checked: a finite number from 0 to MAX_TIMEOUT_S."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout <= MAX_TIMEOUT_S:
        raise InvalidInputError(f"timeout must be a number of seconds from 0 to {MAX_TIMEOUT_S}, got {timeout!r}")
    return float(timeout)


def _format_metrics(metrics: dict, format: str):
    if format == "json":
        return metrics
    if format == "prometheus":
        if not native.available():
            raise InvalidInputError("Prometheus output needs the native library")
        return native.to_prometheus(metrics)
    raise InvalidInputError(f"format must be 'json' or 'prometheus', got {format!r}")
