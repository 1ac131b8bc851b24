"""Models of the Python runtime, loaded once per process and shared; the twin of
native/src/model/. The silero VAD network runs in numpy, its weights read from the
model's ONNX file with the ``onnx`` package (silero.rs documents the network); other
graphs run on onnxruntime (one thread per call, spinning off). Every model call, on
either runtime, counts against the process-wide inference thread budget
(``set_inference_threads``, ``REMOTEMEDIA_INFERENCE_THREADS``)."""

from __future__ import annotations

import importlib.util
import os
import threading
import weakref
from pathlib import Path

import numpy as np

from ._contract import (
    INFERENCE_THREADS_ENV,
    MAX_INFERENCE_THREADS,
    MAX_MODEL_BYTES,
    MODEL_OPS,
    ONNXRUNTIME_MIN_VERSION,
)

WINDOW, CONTEXT, NFFT, HOP, PAD = 512, 64, 256, 128, 128
BINS, FRAMES, HIDDEN = NFFT // 2 + 1, 4, 128
GATES = 4 * HIDDEN
ENCODER = ((BINS, 128, 1), (128, 64, 2), (64, 64, 2), (64, HIDDEN, 1))
BASIS_TOLERANCE = 1e-4
SAMPLE_CLIP = np.float32(1e6)  # native model/mod.rs SAMPLE_CLIP
# The file of the silero-vad package used when a VAD names no model_path: 16 kHz, no If.
SILERO_PACKAGE_FILE = "silero_vad_16k_sequence.onnx"
# pipecat-ai's Smart Turn model, inside its package folder.
SMART_TURN_PACKAGE_FILE = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")
#: onnxruntime's element types the Model node takes, by its type strings.
ELEMS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
         "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
         "tensor(bool)": np.bool_}

_LOADED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_LOADING = threading.Lock()


class ModelFileError(ValueError):
    """A model file that is missing, unreadable, not ONNX or not of the expected shape
    (internal: nodes turn it into the ParamError of their ``model_path``)."""


class EngineMissingError(ValueError):
    """The engine a model needs is not installed (internal: the ParamError of ``engine``)."""


class _Budget:
    """At most ``limit`` model calls at once in the process; callers over it wait."""

    def __init__(self):
        self.cond, self.running, self.limit = threading.Condition(), 0, 0

    def threads(self) -> int:
        with self.cond:
            if not self.limit:
                try:
                    n = int(os.environ.get(INFERENCE_THREADS_ENV, ""))
                except ValueError:
                    n = 0
                self.limit = n if 1 <= n <= MAX_INFERENCE_THREADS else len(os.sched_getaffinity(0))
            return self.limit

    def set(self, n: int) -> None:
        with self.cond:
            self.limit = n
            self.cond.notify_all()

    def run(self, fn, *args):
        with self.cond:  # a re-entrant lock: threads() takes it again
            while self.running >= self.threads():
                self.cond.wait()
            self.running += 1
        try:
            return fn(*args)
        finally:
            with self.cond:
                self.running -= 1
                self.cond.notify()


BUDGET = _Budget()


def onnxruntime_library() -> str | None:
    """The installed onnxruntime wheel's ``libonnxruntime.so`` (found without importing
    the package), for the native engine."""
    spec = importlib.util.find_spec("onnxruntime")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        libs = sorted(Path(folder, "capi").glob("libonnxruntime.so*"))
        if libs:
            return str(libs[-1])
    return None


def silero_package_model() -> str | None:
    """The silero-vad package's 16 kHz model file, if the package is installed (found
    without importing it, which would import torch)."""
    spec = importlib.util.find_spec("silero_vad")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / SILERO_PACKAGE_FILE
        if path.is_file():
            return str(path)
    return None


def smart_turn_package_model() -> str | None:
    """pipecat-ai's Smart Turn v3.2 model file, if the package is installed (found without
    importing pipecat, which needs its many dependencies)."""
    spec = importlib.util.find_spec("pipecat")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, *SMART_TURN_PACKAGE_FILE)
        if path.is_file():
            return str(path)
    return None


def with_package_models(manifest: dict) -> dict:
    """``manifest`` with the packages' models as the ``model_path`` of every node that
    needs one and names none: silero-vad's for a silero VAD, pipecat-ai's for SmartTurn
    (the native runtime does not look for Python packages)."""
    nodes = []
    for node in manifest["nodes"]:
        params = node.get("params") or {}
        path = None
        if isinstance(params, dict) and "model_path" not in params:
            if node.get("node_type") == "VAD" and params.get("engine") == "silero":
                path = silero_package_model()
            elif node.get("node_type") == "SmartTurn":
                path = smart_turn_package_model()
        if path:
            node = {**node, "params": {**params, "model_path": path}}
        nodes.append(node)
    return {**manifest, "nodes": nodes}


def _cached(kind: str, path: str, extra: tuple, load):
    """``load(real path)`` once per process for (kind, file, extra) while something holds it."""
    try:
        key = os.path.realpath(path, strict=True)
    except (OSError, ValueError) as e:
        raise ModelFileError(f"cannot open '{path}': {e}") from None
    if not os.path.isfile(key):
        raise ModelFileError(f"'{path}' is not a file")
    if os.path.getsize(key) > MAX_MODEL_BYTES:
        raise ModelFileError(f"'{path}' is more than the {MAX_MODEL_BYTES} bytes a model may have")
    with _LOADING:
        model = _LOADED.get((kind, key, extra))
        if model is None:
            model = load(key)
            _LOADED[(kind, key, extra)] = model
        return model


def silero(path: str) -> Silero:
    """The silero model at ``path``, loaded once per process while something holds it."""
    return _cached("silero", path, (), lambda key: Silero(_initializers(_load_onnx(key, path, "silero engine")), path))


def session(path: str) -> Session:
    """The model at ``path`` on onnxruntime, loaded once per process while something holds it."""
    return _cached("session", path, (), lambda key: Session(key, path))


def unsupported_ops(path: str) -> list[str]:
    """The operators of the model at ``path`` that the native built-in engine does not run."""
    model = _cached("onnx", path, (), lambda key: _Onnx(_load_onnx(key, path, "Model node's engine \"native\"")))
    return sorted({n.op_type for n in model.proto.graph.node} - MODEL_OPS)


class _Onnx:
    """A parsed ONNX file (weak-referenceable, for the cache)."""

    def __init__(self, proto):
        self.proto = proto


def _load_onnx(key: str, shown: str, who: str):
    try:
        import onnx
    except ImportError:
        raise ModelFileError(f"the Python runtime's {who} needs the onnx package "
                             "(pip install 'remotemedia[silero]')") from None
    try:
        return onnx.load(key, load_external_data=False)
    except Exception as e:  # onnx raises protobuf's DecodeError and others
        raise ModelFileError(f"'{shown}' is not a usable ONNX file: {e}") from None


class Port:
    """A model input or output: name, numpy type (None: one the Model node does not
    take) and declared dimensions (None: symbolic or unknown)."""

    def __init__(self, arg):
        self.name, self.elem = arg.name, ELEMS.get(arg.type)
        self.dims = [d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or [])]


class Session:
    """A model on onnxruntime: one session, one thread per call, spinning off."""

    def __init__(self, key: str, shown: str):
        try:
            import onnxruntime
        except ImportError:
            raise EngineMissingError(f"onnxruntime cannot be loaded (the Python runtime imports the onnxruntime package); "
                                     f"install onnxruntime {ONNXRUNTIME_MIN_VERSION} or newer (pip install onnxruntime)") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(key, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own errors
            raise ModelFileError(f"'{shown}' is not a usable ONNX file: onnxruntime says: {e}") from None
        self.inputs = [Port(i) for i in self.session.get_inputs()]
        self.outputs = [Port(o) for o in self.session.get_outputs()]

    def run(self, outputs: list[str], feeds: dict) -> list:
        return BUDGET.run(self.session.run, outputs, feeds)


def _initializers(model) -> dict:
    from onnx import numpy_helper

    graph = model.graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer
               if t.data_type == 1 and t.data_location != 1}  # FLOAT, not EXTERNAL
    lstm = next((list(n.input) for n in graph.node if n.op_type == "LSTM"), None)
    return {"__lstm__": lstm, **tensors}


class Silero:
    """The weights of one silero VAD model; ``state()`` makes one stream's state."""

    def __init__(self, tensors: dict, shown: str):
        def get(names, dims):
            name = next((n for n in names if n in tensors), None)
            if name is None:
                raise ModelFileError(f"'{shown}': it has no tensor '{names[0]}', so it is not a silero VAD model")
            t = tensors[name]
            if list(t.shape) != list(dims):
                raise ModelFileError(f"'{shown}': tensor '{name}' has shape {list(t.shape)}, a silero VAD model has {list(dims)}")
            return t.astype(np.float32)

        basis = get(["stft.forward_basis_buffer", "model.stft.forward_basis_buffer"], (2 * BINS, 1, NFFT))[:, 0, :]
        n = np.arange(NFFT)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / NFFT)).astype(np.float32)
        phase = 2 * np.pi * ((np.arange(BINS)[:, None] * n) % NFFT) / NFFT
        worst = max(np.abs(basis[:BINS] - self.window * np.cos(phase)).max(),
                    np.abs(np.abs(basis[BINS:]) - np.abs(self.window * np.sin(phase))).max())
        if worst > BASIS_TOLERANCE:
            raise ModelFileError(f"'{shown}': its STFT kernel is not a periodic-Hann DFT (off by {worst})")
        self.encoder = []
        for i, (inputs, outputs, stride) in enumerate(ENCODER):
            names = [f"encoder.{i}.%s", f"encoder.{i}.reparam_conv.%s", f"model.encoder.{i}.reparam_conv.%s"]
            w = get([p % "weight" for p in names], (outputs, inputs, 3)).reshape(outputs, inputs * 3)
            b = get([p % "bias" for p in names], (outputs,))
            self.encoder.append((w, b[:, None], stride))
        lstm = tensors["__lstm__"]
        if lstm is not None:
            name = lambda i: lstm[i] if i < len(lstm) else ""  # noqa: E731
            w, r = get([name(1)], (1, GATES, HIDDEN))[0], get([name(2)], (1, GATES, HIDDEN))[0]
            b = get([name(3)], (1, 2 * GATES))[0]
            bias = b[:GATES] + b[GATES:]
        else:
            order = np.concatenate([np.arange(g * HIDDEN, (g + 1) * HIDDEN) for g in (0, 3, 1, 2)])
            part = lambda p, dims: get([f"decoder.rnn.{p}", f"model.decoder.rnn.{p}"], dims)[order]  # noqa: E731
            w, r = part("weight_ih", (GATES, HIDDEN)), part("weight_hh", (GATES, HIDDEN))
            bias = part("bias_ih", (GATES,)) + part("bias_hh", (GATES,))
        self.lstm, self.lstm_bias = np.concatenate([w, r], axis=1), bias
        out = ["output.%s", "decoder.decoder.2.%s", "model.decoder.decoder.2.%s"]
        self.out_weight = get([p % "weight" for p in out], (1, HIDDEN, 1))[0, :, 0]
        self.out_bias = float(get([p % "bias" for p in out], (1,))[0])

    def state(self) -> dict:
        """A fresh stream: zero LSTM state and zero context."""
        return {"h": np.zeros(HIDDEN, np.float32), "c": np.zeros(HIDDEN, np.float32),
                "context": np.zeros(CONTEXT, np.float32)}

    def forward(self, state: dict, window: np.ndarray) -> float:
        """Speech probability of the next ``WINDOW`` samples of ``state``'s stream."""
        # clipped to ±SAMPLE_CLIP (120 dB above full scale), as natively
        x = np.concatenate([state["context"], np.clip(window.astype(np.float32), -SAMPLE_CLIP, SAMPLE_CLIP)])
        state["context"] = x[-CONTEXT:].copy()
        padded = np.pad(x, PAD, mode="reflect")
        frames = np.stack([padded[f * HOP:f * HOP + NFFT] for f in range(1, FRAMES + 1)]) * self.window
        a = np.abs(np.fft.rfft(frames, axis=1)).T.astype(np.float32)  # BINS × FRAMES
        for w, b, stride in self.encoder:
            length = a.shape[1]
            n = (length - 1) // stride + 1
            p = np.pad(a, ((0, 0), (1, 1)))
            cols = np.stack([p[:, t:t + (n - 1) * stride + 1:stride] for t in range(3)], axis=1).reshape(-1, n)
            a = np.maximum(w @ cols + b, 0)
        gates = self.lstm @ np.concatenate([a[:, 0], state["h"]]) + self.lstm_bias
        with np.errstate(over="ignore"):  # a saturated gate: exp overflows to inf, the sigmoid is 0
            i, o, f = (1 / (1 + np.exp(-gates[k * HIDDEN:(k + 1) * HIDDEN])) for k in range(3))
        state["c"] = (f * state["c"] + i * np.tanh(gates[3 * HIDDEN:])).astype(np.float32)
        state["h"] = (o * np.tanh(state["c"])).astype(np.float32)
        z = float(self.out_weight @ np.maximum(state["h"], 0)) + self.out_bias
        return 1 / (1 + np.exp(-z))
