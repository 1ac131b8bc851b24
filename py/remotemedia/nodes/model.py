"""Model reference: the same windows, context, state, constants, batches, outputs and
events as the native node (native/src/nodes/audio/model/, which documents them), with
every graph on the onnxruntime package. Engine "native" refuses, as the native runtime
does, a model the built-in engine cannot run."""

from __future__ import annotations

import logging

import numpy as np

from .._contract import MAX_BUFFER_SAMPLES, MODEL_OPS_LIST
from ..audio import Audio
from ..errors import NodeError
from ..model import ModelFileError, unsupported_ops
from ..node import Emit, ParamError
from ._common import BuiltinNode, builtin, mono_f32, onnx_session

MODEL_OPS_NOTE = "use engine \"onnxruntime\" or \"auto\""
NAMES = {np.float32: "float32", np.float16: "float16", np.float64: "float64", np.int64: "int64", np.int32: "int32",
         np.int8: "int8", np.uint8: "uint8", np.bool_: "bool"}
FLOATS = (np.float32, np.float16, np.float64)


def show_dims(dims: list) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def fit(dims: list, samples: int) -> list[int]:
    """The input shape for ``samples`` samples: declared dimensions, unknown ones 1 except
    the last unknown one, which takes what the known ones leave."""
    if not dims:
        return [samples]
    known = int(np.prod([d for d in dims if d and d > 0])) if any(d and d > 0 for d in dims) else 1
    shape = [d if d and d > 0 else 1 for d in dims]
    free = [i for i, d in enumerate(dims) if not d or d <= 0]
    if free and samples % known == 0:
        shape[free[-1]] = samples // known
        return shape
    if not free and known == samples:
        return shape
    raise ValueError(f"the model's input has shape {show_dims(dims)}, which does not take a window of {samples} samples")


def constant(value, elem, dims: list) -> np.ndarray:
    """The constant a param gives for an input (native: model/tensor.rs ``constant``)."""
    is_list = isinstance(value, list)
    items = value if is_list else [value]
    numbers = []
    for x in items:
        if isinstance(x, bool):
            numbers.append(float(x))
        elif isinstance(x, (int, float)):
            numbers.append(float(x))
        else:
            raise ValueError(f"{x} is not a number" if is_list else f"{_json(x)} is not a number or a list of numbers")
    for x in numbers:
        if elem not in FLOATS and (x != int(x) or not _in_range(elem, x)):
            raise ValueError(f"{_num(x)} is not a value of the input's type {NAMES[elem]}")
        if elem is np.bool_ and not isinstance(value, bool):
            raise ValueError(f"{_num(x)} is not a value of the input's type bool (give true or false)")
    declared = [d for d in dims if d is not None and d > 0]
    if dims and len(declared) == len(dims) and int(np.prod(declared)) == len(numbers):
        shape = declared
    elif not dims and len(numbers) == 1 and not is_list:
        shape = []
    elif len(dims) == 1 or (not dims and is_list):
        shape = [len(numbers)]
    else:
        raise ValueError(f"{len(numbers)} values do not fit the input's shape {show_dims(dims)}")
    return np.array(numbers, dtype=np.float64).astype(elem).reshape(shape)


def _in_range(elem, x: float) -> bool:
    if elem is np.bool_:
        return 0 <= x <= 1
    info = np.iinfo(elem)
    return info.min <= x <= info.max


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


def _json(x) -> str:
    import json
    return json.dumps(x, separators=(",", ":"))


class _Ort:
    """A model on onnxruntime, checked as engine.rs checks it, with what each run feeds it."""

    def __init__(self, model_path, input, outputs, state, constants, samples, batch):
        self.session = onnx_session(model_path)
        ins, outs = self.session.inputs, self.session.outputs

        def find(ports, name, what, param):
            for i, p in enumerate(ports):
                if p.name == name:
                    return i
            raise ParamError(param, f"the model has no {what} '{name}' (its {what}s: {', '.join(p.name for p in ports)})")

        self.state, self.zeros = [], []
        for i, (a, b) in enumerate(state):
            param = f"state[{i}]"
            pi, po = ins[find(ins, a, "input", param)], outs[find(outs, b, "output", param)]
            if pi.elem is None:
                raise ParamError(param, f"input '{a}' is of a type the Model node does not take")
            same = len(pi.dims) == len(po.dims) and all(x is None or y is None or x == y for x, y in zip(pi.dims, po.dims))
            if pi.elem is not po.elem or not same:
                raise ParamError(param, f"input '{a}' ({NAMES[pi.elem]} {show_dims(pi.dims)}) and output '{b}' "
                                        f"({NAMES.get(po.elem, '?')} {show_dims(po.dims)}) differ, so one cannot carry the other")
            self.state.append((a, b))
            self.zeros.append(np.zeros([1 if d is None else d for d in pi.dims], pi.elem))
        self.constants = {}
        for name, value in constants.items():
            param = f"constants.{name}"
            p = ins[find(ins, name, "input", param)]
            if p.elem is None:
                raise ParamError(param, f"input '{name}' is of a type the Model node does not take")
            try:
                self.constants[name] = constant(value, p.elem, p.dims)
            except ValueError as e:
                raise ParamError(param, str(e)) from None
        carried = {a for a, _ in self.state} | set(self.constants)
        if input is None:
            free = [p for p in ins if p.name not in carried]
            if not free:
                raise ParamError("input", "every input of the model is state or a constant; none is left for the audio")
            port = free[0]
        else:
            port = ins[find(ins, input, "input", "input")]
        if port.elem not in FLOATS:
            raise ParamError("input", f"input '{port.name}' is {NAMES.get(port.elem, 'of another type')}, "
                                      "not a float tensor audio can fill")
        unfed = [p.name for p in ins if p.name != port.name and p.name not in carried]
        if unfed:
            raise ParamError("constants", f"the model's input '{unfed[0]}' is not fed: give it in constants, "
                                          "or pair it with an output in state")
        if port.name in carried:
            raise ParamError("input", f"input '{port.name}' is the audio input and cannot also be state or a constant")
        self.input, self.elem = port.name, port.elem
        if outputs:
            for name in outputs:
                find(outs, name, "output", "output")
            self.outputs = list(outputs)
        else:
            state_outs = {b for _, b in self.state}
            self.outputs = [next((o.name for o in outs if o.name not in state_outs), outs[0].name)]
        for name in self.outputs:
            if next(o for o in outs if o.name == name).elem is None:
                raise ParamError("output", f"output '{name}' is of a type the Model node does not give")
        try:
            self.shape = fit(port.dims, samples)
        except ValueError as e:
            raise ParamError("window", str(e)) from None
        batchable = not self.state and len(self.shape) >= 2 and self.shape[0] == 1 and port.dims[0] is None
        self.batch = 1
        zeros = [z.copy() for z in self.zeros]
        _ran(lambda: self.run(np.zeros(samples, np.float32), 1, zeros), samples)
        for i, ((_, b), z) in enumerate(zip(self.state, self.zeros)):
            if zeros[i].shape != z.shape:
                raise ParamError(f"state[{i}]", f"output '{b}' comes out as {list(zeros[i].shape)}, but its input is {list(z.shape)}")
        if batchable and batch > 1:  # batch only when every output keeps the windows on its first axis
            try:
                self.run(np.zeros(2 * samples, np.float32), 2, [])
                self.batch = batch
            except Exception:  # noqa: BLE001 - a model that does not batch runs windows one by one
                pass

    def run(self, x: np.ndarray, n: int, state: list) -> list[list[np.ndarray]]:
        feeds = {self.input: x.astype(self.elem, copy=False).reshape([self.shape[0] * n] + self.shape[1:])}
        feeds.update({a: s for (a, _), s in zip(self.state, state)})
        feeds.update(self.constants)
        got = self.session.run(self.outputs + [b for _, b in self.state], feeds)
        state[:] = got[len(self.outputs):]
        got = got[:len(self.outputs)]
        if n == 1:
            return [got]
        for name, y in zip(self.outputs, got):
            if y.ndim == 0 or y.shape[0] != n:
                raise ValueError(f"output '{name}' does not keep the windows of a batch on its first axis")
        return [[y[k:k + 1] for y in got] for k in range(n)]


def _ran(fn, samples: int):
    try:
        return fn()
    except ParamError:
        raise
    except Exception as e:  # onnxruntime's own errors
        raise ParamError("window", f"the model does not run on a window of {samples} samples: {e}") from None


@builtin
class Model(BuiltinNode):
    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        """A window is run once it is whole."""
        p = cls.filled(params)
        return None if p is None else max(p["window"] - 1, 0)

    def __init__(self, model_path: str, window: int, emit: str, engine: str, context: int, state: list, constants: dict,
                 batch: int, hop: int | None = None, input: str | None = None, output=None):
        outputs = [output] if isinstance(output, str) else list(output or [])
        twice = next((n for i, n in enumerate(outputs) if n in outputs[:i]), None)
        if twice is not None:
            raise ParamError("output", f"'{twice}' is listed twice; each output is one port")
        if engine == "native":
            if state or constants or len(outputs) > 1:
                raise ParamError("engine", "the built-in engine runs one input to one output; state, constants and several "
                                           "outputs need engine \"onnxruntime\"")
            try:
                missing = unsupported_ops(model_path)
            except ModelFileError as e:
                raise ParamError("model_path", str(e)) from None
            if missing:
                raise ParamError("engine", f"the built-in engine does not run the model's operators {', '.join(missing)} "
                                           f"(it runs {', '.join(MODEL_OPS_LIST)}); {MODEL_OPS_NOTE}")
        self.engine = _Ort(model_path, input, outputs, [tuple(p) for p in state], constants, window + context, batch)
        logging.getLogger("remotemedia").info("Model %s runs on the onnxruntime engine (the Python runtime's only one)", model_path)
        self.ports = self.outputs = outputs if isinstance(output, list) else ["out"]
        self.window, self.hop, self.context, self.audio = window, hop or window, context, emit == "audio"
        self.rate = None

    def latency(self) -> int:
        return self.window - 1

    def _emit(self, start: int, outputs: list) -> list[Emit]:
        out = []
        for port, y in zip(self.ports, outputs):
            if self.audio:
                out.append(Emit(port, Audio(y.reshape(-1).astype(np.float32), self.rate)))
            else:
                out.append(Emit(port, {"start": start / self.rate, "shape": list(y.shape),
                                       "values": [float(v) for v in y.reshape(-1)]}))
        return out

    def _run(self, starts: list[int]) -> list[Emit]:
        xs = []
        for s in starts:
            before = np.concatenate([self.before, self.pending[:s]])[-self.context:] if self.context else self.before[:0]
            before = np.concatenate([np.zeros(self.context - len(before), np.float32), before])
            w = self.pending[s:s + self.window]
            xs += [before, w, np.zeros(self.window - len(w), np.float32)]
        try:
            results = self.engine.run(np.concatenate(xs), len(starts), self.state)
        except Exception as e:  # onnxruntime's own errors
            raise NodeError(f"Model: {e}") from None
        return [e for s, outs in zip(starts, results) for e in self._emit(self.position + s, outs)]

    def _advance(self, n: int) -> None:
        if self.context:
            self.before = np.concatenate([self.before, self.pending[:n]])[-self.context:]
        self.pending, self.position = self.pending[n:], self.position + n

    def process(self, data):
        mono_f32(data, "Model")
        if self.rate is None:
            self.rate, self.pending, self.seen, self.skip, self.position = data.sample_rate, np.zeros(0, np.float32), 0, 0, 0
            self.before, self.state = np.zeros(0, np.float32), [z.copy() for z in self.engine.zeros]
        elif data.sample_rate != self.rate:
            raise NodeError("Model got a chunk whose rate differs from the stream's first")
        self.pending = np.concatenate([self.pending, data.samples])
        out = []
        while True:
            skip = min(self.skip, len(self.pending))
            self._advance(skip)
            self.skip -= skip
            if self.skip or len(self.pending) < self.window:
                return out
            starts = [0]
            # a batch's input stays within the sample budget however much the windows overlap
            batch = min(self.engine.batch, max(MAX_BUFFER_SAMPLES // (self.window + self.context), 1))
            while len(starts) < batch and self.hop <= self.window and starts[-1] + self.hop + self.window <= len(self.pending):
                starts.append(starts[-1] + self.hop)
            out += self._run(starts)
            step = min(self.hop, self.window)
            self._advance(starts[-1] + step)
            self.skip, self.seen = self.hop - step, self.window - step

    def flush(self):
        if self.rate is None:
            return None
        out = []
        if self.skip == 0 and len(self.pending) > self.seen:
            out += self._run([0])
        self.rate = None  # the stream is over; a new one may follow
        return out
