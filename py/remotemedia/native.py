"""The native runtime through cffi: loading, errors, Python host nodes, runs.

Data path of a run: the input array reaches Rust as a borrowed pointer
(``ffi.from_buffer``, no copy); outputs come back as numpy arrays viewing the
Rust-owned ``RmOutputs``, which is freed when the last such array dies.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref

import numpy as np
import orjson

from ._contract import LOG_LEVELS, ONNXRUNTIME_ENV
from .audio import DTYPES, FORMAT_OF, Audio
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
    StreamClosedError,
    TransientError,
)
from .model import onnxruntime_library
from .node import Node, ParamError, encode_json, outputs_of

try:
    from ._ffi import ffi, lib
except ImportError as e:  # no compiled library: the pure-Python runtime is used
    ffi = lib = None
    IMPORT_ERROR: Exception | None = e
else:
    IMPORT_ERROR = None

if lib is not None:
    if not os.environ.get(ONNXRUNTIME_ENV) and (_ort := onnxruntime_library()):
        lib.rm_onnxruntime_set_path(_ort.encode())  # where the native engine finds onnxruntime (loaded when a model needs it)
    OK, INTERNAL, TRANSIENT, NODE = lib.RM_STATUS_OK, lib.RM_STATUS_INTERNAL, lib.RM_STATUS_TRANSIENT, lib.RM_STATUS_NODE
    AUDIO, JSON = lib.RM_DATA_KIND_AUDIO, lib.RM_DATA_KIND_JSON
    #: The exception class of each failure status (ManifestError, CycleError and PluginError are built apart).
    ERRORS = {lib.RM_STATUS_INVALID_ARGUMENT: InvalidInputError, lib.RM_STATUS_GRAPH: GraphError, NODE: NodeError,
              lib.RM_STATUS_QUEUE_FULL: QueueFullError, lib.RM_STATUS_CLOSED: StreamClosedError,
              lib.RM_STATUS_CIRCUIT_OPEN: CircuitOpenError, lib.RM_STATUS_TIMEOUT: NodeTimeoutError,
              lib.RM_STATUS_CANCELLED: CancelledError}


def available() -> bool:
    """True when the native library is loaded and not disabled by REMOTEMEDIA_DISABLE_NATIVE=1."""
    return lib is not None and os.environ.get("REMOTEMEDIA_DISABLE_NATIVE", "") in ("", "0")


def set_inference_threads(threads: int) -> None:
    """The native side of ``remotemedia.set_inference_threads`` (checked there)."""
    if lib is not None:
        _check(lib.rm_set_inference_threads(threads))


def library_version() -> str | None:
    """The loaded native library's version (``rm_version_string``), or None without one."""
    return None if lib is None else ffi.string(lib.rm_version_string()).decode()


# Python exceptions raised inside Python nodes during the current native call, per thread,
# so they can be re-raised as the cause of the NodeError the native core reports.
_pending = threading.local()


def _string(ptr) -> str | None:
    return None if ptr == ffi.NULL else ffi.string(ptr).decode()


def _error(status: int) -> RemoteMediaError:
    """The exception for a failed call, from this thread's last native error."""
    message = _string(lib.rm_last_error_message())
    cause = getattr(_pending, "exc", None)
    _pending.exc = None
    if status == lib.RM_STATUS_MANIFEST:
        path = _string(lib.rm_last_error_path()) or "$"
        text = message.removeprefix(f"manifest error at {path}: ")
        if isinstance(cause, ParamError) and cause.param:
            path = f"{path}.{cause.param}"
        err: RemoteMediaError = ManifestError(path, text)
        cause = None
    elif status == lib.RM_STATUS_CYCLE:
        err = CycleError(message.split(": ", 1)[1].split(" -> "))
    elif status == lib.RM_STATUS_PLUGIN:
        err = PluginError(message, file=message.removeprefix("plugin ").split(": ", 1)[0],
                          path=_string(lib.rm_last_error_path()))
    else:
        cls = ERRORS.get(status, RemoteMediaError)
        err = cls(message, node_id=_string(lib.rm_last_error_node_id()),
                  operation=_string(lib.rm_last_error_operation()), retryable=bool(lib.rm_last_error_retryable()))
    err.__cause__ = cause
    return err


def _check(status: int) -> None:
    if status != OK:
        raise _error(status)


def _take_string(out) -> str:
    try:
        return ffi.string(out[0]).decode()
    finally:
        lib.rm_string_free(out[0])


# ---- Python nodes called from the native executor ------------------------------------

# Handles passed to native code must stay alive while native code may use them.
_handles: dict[int, object] = {}


def _keep(obj) -> object:
    handle = ffi.new_handle(obj)
    _handles[int(ffi.cast("uintptr_t", handle))] = handle
    return handle


def _drop(ptr) -> None:
    _handles.pop(int(ffi.cast("uintptr_t", ptr)), None)


def _fail(ctx, exc: BaseException) -> int:
    _pending.exc = exc
    # the message as the Python runtime words it (executor.py, ``_failure``)
    ctx.set_error(ctx, (str(exc) or type(exc).__name__).encode(errors="replace"))
    if isinstance(exc, InvalidInputError):
        return lib.RM_STATUS_INVALID_ARGUMENT  # the node refused its input: FailureKind::InvalidInput
    return TRANSIENT if isinstance(exc, TransientError) else NODE


def _caps_tuple(caps: dict) -> tuple:
    """Caps as the native side writes them (``{"kind", "format", "channels",
    "sample_rate"}``) as the 4-tuple Python nodes get."""
    return tuple(caps.get(f) for f in ("kind", "format", "channels", "sample_rate"))


def _view_to_python(view):
    if view.kind == JSON:
        return _json(view)
    dtype = DTYPES[view.format]
    samples = np.frombuffer(ffi.buffer(view.data, view.len * dtype.itemsize), dtype).copy()
    if view.channels > 1:
        samples = samples.reshape(-1, view.channels)
    return Audio(samples, view.sample_rate)


def _emit(ctx, node: Node, result) -> int:
    for port, item in outputs_of(result, node):
        view = ffi.new("RmDataView *")
        if isinstance(item, Audio):
            samples = np.ascontiguousarray(item.samples)
            keep = ffi.from_buffer(samples)
            view.kind, view.data, view.len = AUDIO, keep, samples.size
            view.format, view.channels, view.sample_rate = FORMAT_OF[samples.dtype], item.channels, item.sample_rate
        else:
            keep = ffi.from_buffer(encode_json(item).encode())
            view.kind, view.data, view.len = JSON, keep, len(keep)
        status = ctx.emit(ctx, port, view)
        if status != OK:
            return status
    return OK


if lib is not None:
    @ffi.def_extern(error=INTERNAL)
    def _rm_py_create(user_data, params, params_len, instance, ctx):
        cls = ffi.from_handle(user_data)
        try:
            node = cls.create(json.loads(ffi.unpack(params, params_len)))
        except Exception as e:
            return _fail(ctx, e)
        instance[0] = _keep(node)
        return OK

    @ffi.def_extern(error=INTERNAL)
    def _rm_py_process(instance, view, ctx):
        node = ffi.from_handle(instance)
        try:
            return _emit(ctx, node, node.process(_view_to_python(view)))
        except Exception as e:
            return _fail(ctx, e)

    @ffi.def_extern(error=INTERNAL)
    def _rm_py_process_port(instance, port, view, ctx):
        node = ffi.from_handle(instance)
        try:
            item = _view_to_python(view)
            single = port == 0 and type(node).process_port is Node.process_port
            return _emit(ctx, node, node.process(item) if single else node.process_port(port, item))
        except Exception as e:
            return _fail(ctx, e)

    @ffi.def_extern(error=INTERNAL)
    def _rm_py_configure(instance, caps_json, length, ctx):
        try:
            ffi.from_handle(instance).configure([_caps_tuple(c) for c in json.loads(ffi.unpack(caps_json, length))])
            return OK
        except Exception as e:
            return _fail(ctx, e)

    @ffi.def_extern(error=-1)
    def _rm_py_latency(user_data, params, params_len, caps_json, caps_len):
        cls = ffi.from_handle(user_data)
        frames = cls.declared_latency(json.loads(ffi.unpack(params, params_len)),
                                      _caps_tuple(json.loads(ffi.unpack(caps_json, caps_len))))
        return -1 if frames is None else frames

    @ffi.def_extern(error=ffi.NULL)
    def _rm_py_get_extension(node_type, id):
        return _EXTENSIONS.get(ffi.string(id), ffi.NULL)

    # What every Python node type offers through get_extension (the structs live as long as the process).
    _EXTENSIONS = {
        b"remotemedia.ports/1": ffi.new("RmNodePorts *", {"process_port": lib._rm_py_process_port}),
        b"remotemedia.configure/1": ffi.new("RmNodeConfigure *", {"configure": lib._rm_py_configure}),
        b"remotemedia.latency/1": ffi.new("RmNodeLatency *", {"latency": lib._rm_py_latency}),
    }

    @ffi.def_extern(error=INTERNAL)
    def _rm_py_flush(instance, ctx):
        node = ffi.from_handle(instance)
        try:
            return _emit(ctx, node, node.flush())
        except Exception as e:
            return _fail(ctx, e)

    @ffi.def_extern(error=INTERNAL)
    def _rm_py_reset(instance, ctx):
        try:
            ffi.from_handle(instance).reset()
            return OK
        except Exception as e:
            return _fail(ctx, e)

    @ffi.def_extern()
    def _rm_py_destroy(instance):
        _drop(instance)

    @ffi.def_extern()
    def _rm_py_release(user_data):
        _drop(user_data)


# Native log levels as Python logging levels (trace is below DEBUG).
PY_LEVELS = {LOG_LEVELS["error"]: logging.ERROR, LOG_LEVELS["warn"]: logging.WARNING, LOG_LEVELS["info"]: logging.INFO,
             LOG_LEVELS["debug"]: logging.DEBUG, LOG_LEVELS["trace"]: 5}
LOGGER = logging.getLogger("remotemedia")

if lib is not None:
    @ffi.def_extern()
    def _rm_py_log(user_data, level, target, message):
        LOGGER.log(PY_LEVELS.get(level, logging.DEBUG), "%s: %s", ffi.string(target).decode(errors="replace"),
                   ffi.string(message).decode(errors="replace"))


class NativeRuntime:
    """The process-wide native runtime (kept for the life of the process)."""

    _instance: NativeRuntime | None = None
    _lock = threading.Lock()

    def __init__(self):
        # Native log records go to logging.getLogger("remotemedia") (debug and up; the
        # logger's own level filters further), including those of plugin discovery, which
        # runs in rm_runtime_new. Fails only if the process already has another global
        # tracing subscriber, in which case native logs stay there.
        if lib.rm_set_log_callback(lib._rm_py_log, ffi.NULL, LOG_LEVELS["debug"]) != OK:
            LOGGER.debug("native logs not forwarded: %s", _string(lib.rm_last_error_message()))
        out = ffi.new("RmRuntime **")
        _check(lib.rm_runtime_new(out))
        self.ptr = out[0]
        self.registered: dict[str, type[Node]] = {}
        self._refresh_native_types()

    def _refresh_native_types(self) -> None:
        self.native_types = {t["node_type"] for t in self.node_types() if t["runtime"] == "native"}

    def load_plugin(self, path: str | os.PathLike) -> dict:
        """Loads the plugin library at ``path`` and registers its node types; returns its
        description (as in ``list_plugins()``). Raises PluginError naming the file and why."""
        _check(lib.rm_runtime_load_plugin(self.ptr, os.fsencode(path)))
        self._refresh_native_types()
        real = os.path.realpath(path)
        return next(p for p in self.plugins()["plugins"] if p["file"] == real)

    def plugins(self) -> dict:
        """Loaded plugins, libraries discovery rejected (with reasons) and the search path."""
        out = ffi.new("char **")
        _check(lib.rm_runtime_plugins(self.ptr, out))
        return json.loads(_take_string(out))

    @classmethod
    def get(cls) -> NativeRuntime:
        with cls._lock:
            if cls._instance is None:
                cls._instance = NativeRuntime()
            return cls._instance

    def node_types(self) -> list[dict]:
        out = ffi.new("char **")
        _check(lib.rm_runtime_node_types(self.ptr, out))
        return json.loads(_take_string(out))

    def register(self, cls: type[Node]) -> None:
        """Makes the Python class ``cls`` callable from native pipelines (once per class)."""
        with self._lock:
            if self.registered.get(cls.node_type) is cls:
                return
            keep = [ffi.new("char[]", s.encode()) for s in cls.outputs]
            outputs = ffi.new("const char *[]", keep)
            strings = [ffi.new("char[]", s.encode()) for s in
                       (cls.node_type, cls.description(), json.dumps(cls.params_schema))]
            info = ffi.new("RmNodeTypeInfo *", {
                "node_type": strings[0], "description": strings[1], "params_schema_json": strings[2],
                "outputs": outputs, "n_outputs": len(cls.outputs)})
            vtable = ffi.new("RmNodeVTable *", {
                "user_data": _keep(cls), "create": lib._rm_py_create, "process": lib._rm_py_process,
                "flush": lib._rm_py_flush, "reset": lib._rm_py_reset, "destroy": lib._rm_py_destroy,
                "release": lib._rm_py_release})
            caps = ffi.new("char[]", json.dumps(cls.caps).encode()) if cls.caps is not None else ffi.NULL
            extension = ffi.new("RmNodeTypeExtension *", {"size": ffi.sizeof("RmNodeTypeExtension"), "caps": caps})
            _check(lib.rm_runtime_register_node_extensions(self.ptr, info, extension, vtable, lib._rm_py_get_extension))
            self.registered[cls.node_type] = cls


def check_plugin(path: str | os.PathLike, call_timeout_ms: int) -> dict:
    """The conformance report of the plugin at ``path``, loaded in this process, each
    instance in a child process, each call limited to ``call_timeout_ms``."""
    out = ffi.new("char **")
    _check(lib.rm_plugin_check_timed(os.fsencode(path), call_timeout_ms, out))
    return json.loads(_take_string(out))


class NativePipeline:
    """A pipeline built and run by the native core."""

    runtime = "native"

    def __init__(self, runtime: NativeRuntime, manifest_text: str):
        text = manifest_text.encode("utf-8", "surrogatepass")
        out = ffi.new("RmPipeline **")
        _check(lib.rm_pipeline_new(runtime.ptr, text, len(text), out))
        self.ptr = out[0]
        self._finalizer = weakref.finalize(self, lib.rm_pipeline_free, self.ptr)
        description = self.describe()
        nodes = description["nodes"]
        self.named_inputs = "inputs" in description["manifest"]
        # keys[node][port]: where an output goes in the result dict (sinks are the
        # manifest's nodes, which come first, so converters a later plan inserts need none).
        self.keys = [[n["id"] if p == 0 else f"{n['id']}.{port}" for p, port in enumerate(n["outputs"])]
                     for n in nodes]
        self.input_names = description["inputs"]

    @property
    def node_runtimes(self) -> dict[str, str]:
        """Each node's runtime, converters of the plan in use included."""
        return {n["id"]: n["runtime"] for n in self.describe()["nodes"]}

    def describe(self) -> dict:
        """The native description of the pipeline (see rm_pipeline_describe)."""
        out = ffi.new("char **")
        _check(lib.rm_pipeline_describe(self.ptr, out))
        return json.loads(_take_string(out))

    def plan_json(self, inputs: list | None = None) -> dict:
        """The plan in use, or with ``inputs`` (a caps tuple per input) the one for such input."""
        def fields(caps: tuple) -> dict:
            return dict(zip(("format", "channels", "sample_rate"), caps[1:]))

        if inputs is None:
            arg = ffi.NULL
        elif not self.named_inputs:
            arg = json.dumps(fields(inputs[0])).encode()
        else:
            arg = json.dumps({name: fields(c) for name, c in zip(self.input_names, inputs)}).encode()
        out = ffi.new("char **")
        _check(lib.rm_pipeline_plan(self.ptr, arg, out))
        return json.loads(_take_string(out))

    def node_latencies(self) -> dict[str, int]:
        return {n["id"]: n["latency"] for n in self.describe()["nodes"]}

    def run(self, inputs) -> dict[str, list]:
        """One-shot run of ``inputs``: the one input's Audio, or (input index, Audio)
        pairs; returns sink outputs by key, each list in emission order."""
        out = _out_params.outputs
        if type(inputs) is Audio:  # the one input: _audio_args inlined (0.2 µs a call, measured)
            x = inputs.samples
            status = _run(self.ptr, _borrow(x), x.size, FORMAT_OF[x.dtype], 1 if x.ndim == 1 else x.shape[1],
                          inputs.sample_rate, out)
        else:
            status = lib.rm_pipeline_run_inputs(self.ptr, _input_array(inputs), len(inputs), out)
        if status:
            raise _error(status)
        results: dict[str, list] = {}
        for key, value in _items(out[0], self.keys):
            if key in results:
                results[key].append(value)
            else:
                results[key] = [value]
        return results

    def run_into(self, inputs, out: np.ndarray) -> int:
        """One-shot run (``inputs`` as ``run`` takes them) writing its audio into ``out``
        (rm_pipeline_run_into); returns frames. The caller has checked the arrays'
        layout (``Pipeline.run_into``)."""
        frames = _out_params.frames
        if type(inputs) is Audio:  # the one input: _audio_args inlined (0.2 µs a call, measured)
            x = inputs.samples
            status = _run_into(self.ptr, _from_buffer(x), x.size, FORMAT_OF[x.dtype], 1 if x.ndim == 1 else x.shape[1],
                               inputs.sample_rate, _from_buffer(out), out.shape[0], FORMAT_OF[out.dtype],
                               1 if out.ndim == 1 else out.shape[1], frames)
        else:
            status = lib.rm_pipeline_run_inputs_into(self.ptr, _input_array(inputs), len(inputs), _from_buffer(out),
                                                     out.shape[0], FORMAT_OF[out.dtype], 1 if out.ndim == 1 else out.shape[1],
                                                     frames)
        if status:
            raise _error(status)
        return frames[0]

    def group(self, capacity: int, workers: int) -> NativeGroup:
        return NativeGroup(self, capacity, workers)

    def session(self, capacity: int, overflow: str) -> NativeSession:
        return NativeSession(self, capacity, overflow)

    def metrics(self) -> dict:
        return json.loads(_metrics_text(lib.rm_pipeline_metrics, self.ptr, lib.RM_METRICS_FORMAT_JSON))




def _metrics_text(fn, ptr, fmt: int) -> str:
    out = ffi.new("char **")
    _check(fn(ptr, fmt, out))
    return _take_string(out)


def to_prometheus(metrics: dict) -> str:
    """Prometheus text for metrics JSON of either runtime (formatted by the native core)."""
    text = json.dumps(metrics).encode()
    out = ffi.new("char **")
    _check(lib.rm_metrics_to_prometheus(text, len(text), out))
    return _take_string(out)


def _audio_args(audio: Audio) -> tuple:
    """An Audio as a native call's input arguments: its samples (borrowed, not copied),
    their count, format, channels and rate. The calls with one Audio (``run``,
    ``run_into``, ``push``) inline it: a call to it costs 0.2 µs, a tenth of theirs."""
    x = audio.samples
    return _borrow(x), x.size, FORMAT_OF[x.dtype], 1 if x.ndim == 1 else x.shape[1], audio.sample_rate


def _input_array(inputs: list):
    """``inputs`` ((input index, Audio) each) as an ``RmInput`` array viewing their
    samples; the caller keeps ``inputs`` alive for the native call."""
    array = ffi.new("RmInput[]", len(inputs))
    for slot, (index, audio) in zip(array, inputs):
        slot.input = index
        view = slot.data
        view.kind = AUDIO
        view.data, view.len, view.format, view.channels, view.sample_rate = _audio_args(audio)
    return array


def _borrow(x: np.ndarray):
    """The array's memory for a native call, without a copy."""
    try:
        return _from_buffer(x)
    except (BufferError, ValueError) as e:
        raise InvalidInputError(f"samples must be C-contiguous (np.ascontiguousarray copies): {e}") from None


class _OutParams(threading.local):
    """Out-params reused per thread: each call reads what they point to before the
    thread makes another call, and no two threads share one."""

    def __init__(self):
        self.outputs = ffi.new("RmOutputs **")
        self.frames = ffi.new("size_t *")


_out_params = _OutParams() if ffi is not None else None


def _items(raw, keys, free=None) -> list[tuple[str, object]]:
    """(key, item) pairs of native outputs, taking ownership of `raw` (an
    ``RmOutputs *``, or with ``free`` its releaser, another struct with ``items`` and
    ``len``).

    Audio items are numpy arrays viewing native memory: each array's buffer pointer
    carries a destructor, so the outputs are freed when the last array viewing them
    dies. With one audio item (the common case) that destructor frees them itself;
    with several, each holds a reference to one shared owner. JSON items are parsed
    (copied), so outputs without audio are freed at once.
    """
    free = free or _free_outputs
    items = raw.items
    pairs: list = []
    audio = []  # where the audio items are in `pairs`, each still as its view
    try:
        for i in range(raw.len):
            item = items[i]
            view = item.view
            key = keys[item.node_index][item.port_index]
            if view.kind == AUDIO:
                audio.append(len(pairs))
                pairs.append((key, view))
            else:
                pairs.append((key, _json(view)))
    except BaseException:
        free(raw)
        raise
    if not audio:
        free(raw)
        return pairs
    if len(audio) == 1:
        release = lambda _p, raw=raw: free(raw)  # noqa: E731
    else:
        owner = _gc(raw, free)
        release = lambda _p, owner=owner: None  # noqa: E731
    for at in audio:
        key, view = pairs[at]
        dtype = DTYPES[view.format]
        keep = _gc(view.data, release)
        samples = _frombuffer(_buffer(keep, view.len * dtype.itemsize), dtype)
        if view.channels > 1:
            samples = samples.reshape(-1, view.channels)
        pairs[at] = (key, _trusted(samples, view.sample_rate))
    return pairs


def _json(view):
    """The value of a JSON view (parsed: a copy)."""
    return orjson.loads(ffi.unpack(ffi.cast("char *", view.data), view.len))


class NativeSession:
    """A native streaming session (see rm_session_*). Native calls release the GIL."""

    def __init__(self, pipeline: NativePipeline, capacity: int, overflow: str):
        options = ffi.new("RmSessionOptions *", {"capacity": capacity, "overflow": getattr(lib, f"RM_OVERFLOW_{overflow.upper()}")})
        out = ffi.new("RmSession **")
        _check(lib.rm_session_new(pipeline.ptr, options, out))
        self.ptr = out[0]
        self.keys = pipeline.keys
        self._finalizer = weakref.finalize(self, lib.rm_session_free, self.ptr)

    def push(self, inputs, timeout: float) -> None:
        """Pushes ``inputs`` (as ``NativePipeline.run`` takes them) in one step."""
        if type(inputs) is Audio:  # the one input: _audio_args inlined (0.2 µs a call, measured)
            x = inputs.samples
            status = _push(self.ptr, _borrow(x), x.size, FORMAT_OF[x.dtype], 1 if x.ndim == 1 else x.shape[1],
                           inputs.sample_rate, int(timeout * 1000))
        else:
            status = lib.rm_session_push_inputs(self.ptr, _input_array(inputs), len(inputs), int(timeout * 1000))
        if status:
            raise _error(status)

    def pull(self, timeout: float, max_items: int = 0) -> list[tuple[str, object]]:
        out = _out_params.outputs
        # past size_t, "at most max_items" is every item, as 0 says
        status = _pull(self.ptr, int(timeout * 1000), max_items if max_items < 2**63 else 0, out)
        if status:
            raise _error(status)
        return _items(out[0], self.keys)

    def pull_into(self, out: np.ndarray, timeout: float) -> int:
        """Takes queued audio into ``out`` (rm_session_pull_into); returns frames. The
        caller has checked ``out``'s layout (``Stream.pull_into``)."""
        frames = _out_params.frames
        status = _pull_into(self.ptr, int(timeout * 1000), _from_buffer(out), out.shape[0], FORMAT_OF[out.dtype],
                            1 if out.ndim == 1 else out.shape[1], frames)
        if status:
            raise _error(status)
        return frames[0]

    def flush(self) -> None:
        _check(lib.rm_session_flush(self.ptr))

    def close(self) -> None:
        _check(lib.rm_session_close(self.ptr))

    def metrics(self) -> dict:
        return json.loads(_metrics_text(lib.rm_session_metrics, self.ptr, lib.RM_METRICS_FORMAT_JSON))

    def stats(self) -> dict:
        out = ffi.new("RmSessionStats *")
        _check(lib.rm_session_stats(self.ptr, out))
        return {"queue_depth": out.queue_depth, "dropped": out.dropped, "chunks_in": out.chunks_in,
                "items_out": out.items_out}


class NativeGroup:
    """A native session group (see rm_group_*). Native calls release the GIL."""

    def __init__(self, pipeline: NativePipeline, capacity: int, workers: int):
        out = ffi.new("RmGroup **")
        _check(lib.rm_group_new(pipeline.ptr, capacity, workers, out))
        self.ptr = out[0]
        self.keys = pipeline.keys
        self._finalizer = weakref.finalize(self, lib.rm_group_free, self.ptr)
        self._id = ffi.new("uint64_t *")

    def open(self) -> int:
        _check(lib.rm_group_open(self.ptr, self._id))
        return self._id[0]

    def close(self, session: int) -> None:
        _check(lib.rm_group_close(self.ptr, session))

    def push(self, chunks: list[tuple[int, int, Audio]]) -> dict[int, RemoteMediaError]:
        """One tick of (session, input index, Audio) chunks; the failed sessions' errors."""
        n = len(chunks)
        array, statuses = ffi.new("RmGroupChunk[]", n), ffi.new("RmStatus[]", n)
        for slot, (session, index, audio) in zip(array, chunks):
            slot.session, slot.input = session, index
            view = slot.data
            view.kind = AUDIO
            view.data, view.len, view.format, view.channels, view.sample_rate = _audio_args(audio)
        status = _group_push(self.ptr, array, n, statuses)
        return {} if status == OK else _failures(status, [c[0] for c in chunks], statuses)

    def push_block(self, sessions: np.ndarray, block: np.ndarray, sample_rate: int) -> dict[int, RemoteMediaError]:
        """One tick: session ``sessions[i]`` (uint64) takes ``block[i]`` (checked)."""
        n = len(sessions)
        statuses = ffi.new("RmStatus[]", n)
        channels = 1 if block.ndim == 2 else block.shape[2]
        status = lib.rm_group_push_block(self.ptr, _from_buffer("uint64_t[]", sessions), n, _borrow(block),
                                         block[0].size if n else 0, FORMAT_OF[block.dtype], channels, sample_rate,
                                         statuses)
        return {} if status == OK else _failures(status, sessions.tolist(), statuses)

    def flush(self, sessions: list[int]) -> dict[int, RemoteMediaError]:
        statuses = ffi.new("RmStatus[]", len(sessions))
        status = lib.rm_group_flush(self.ptr, sessions, len(sessions), statuses)
        return {} if status == OK else _failures(status, sessions, statuses)

    def pull(self, max_per_session: int, vad_table: bool):
        """((session, key, item) each, {VAD key: (session, frame, score, speech) columns})."""
        out = ffi.new("RmGroupOutputs **")
        flags = lib.RM_GROUP_PULL_VAD_TABLE if vad_table else 0
        _check(lib.rm_group_pull(self.ptr, max_per_session, flags, out))
        raw = out[0]
        if raw.len == 0 and raw.vad_frames.len == 0:  # nothing ready: the common tick without a decision
            lib.rm_group_outputs_free(raw)
            return [], {}
        try:
            sessions = _column(raw.sessions, raw.len, np.uint64).tolist()
            t = raw.vad_frames
            node = _column(t.node_index, t.len, np.uint32)
            columns = (_column(t.session, t.len, np.uint64), _column(t.frame, t.len, np.uint64),
                       _column(t.score, t.len, np.float32), _column(t.speech, t.len, np.uint8).astype(bool))
            vad = {}
            for index in np.unique(node).tolist() if t.len else ():
                rows = node == index
                vad[self.keys[index][0]] = columns if rows.all() else tuple(c[rows] for c in columns)
        except BaseException:
            lib.rm_group_outputs_free(raw)
            raise
        items = _items(raw, self.keys, lib.rm_group_outputs_free)  # frees raw when its audio views die
        return [(sid, key, item) for sid, (key, item) in zip(sessions, items)], vad

    def stats(self) -> dict:
        out = ffi.new("RmGroupStats *")
        _check(lib.rm_group_stats(self.ptr, out))
        return {"sessions": out.sessions, "ticks": out.ticks, "inference_passes": out.inference_passes,
                "inference_inputs": out.inference_inputs}

    def queued(self, session: int) -> tuple[int, int]:
        queued, dropped = ffi.new("size_t *"), ffi.new("uint64_t *")
        _check(lib.rm_group_queued(self.ptr, session, queued, dropped))
        return queued[0], dropped[0]


def _column(ptr, n: int, dtype) -> np.ndarray:
    """A copy of ``n`` values of ``dtype`` at ``ptr`` (empty when ``n`` is 0)."""
    if n == 0:
        return np.empty(0, dtype)
    return np.frombuffer(ffi.buffer(ptr, n * np.dtype(dtype).itemsize), dtype).copy()


def _failures(status: int, sessions: list[int], statuses) -> dict[int, RemoteMediaError]:
    """Each failed session's error, from a group call's statuses and the last error,
    whose message has a line ``session <id>: <why>`` per failed session (in id order;
    its node and operation are the first failed session's)."""
    first = _error(status)
    lines = {}
    for line in str(first).split("\n"):
        head, _, why = line.partition(": ")
        if head.startswith("session ") and head[8:].isdigit():
            lines[int(head[8:])] = why
    failed = {sid: statuses[i] for i, sid in enumerate(sessions) if statuses[i] != OK}
    lowest = min(failed, default=None)
    return {sid: ERRORS.get(code, RemoteMediaError)(
                lines.get(sid, str(first)), node_id=first.node_id if sid == lowest else None,
                operation=first.operation if sid == lowest else None)
            for sid, code in failed.items()}


# Bound once: the per-call paths above avoid attribute lookups.
_trusted = Audio._trusted
_frombuffer = np.frombuffer
if lib is not None:
    _run, _run_into, _push, _pull = lib.rm_pipeline_run, lib.rm_pipeline_run_into, lib.rm_session_push, lib.rm_session_pull
    _pull_into = lib.rm_session_pull_into
    _group_push = lib.rm_group_push
    _free_outputs = lib.rm_outputs_free
    _from_buffer, _gc, _buffer = ffi.from_buffer, ffi.gc, ffi.buffer
