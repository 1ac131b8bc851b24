"""Model reference: the same windows, input shape and events as the native node
(native/src/nodes/audio/model.rs, which documents them), with the graph on onnxruntime."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..errors import NodeError
from ..model import ModelFileError, graph
from ..node import Emit, ParamError
from ._common import BuiltinNode, builtin, mono_f32


def fit(dims: list, window: int) -> list[int]:
    """The input shape for a window: declared dimensions, unknown ones 1 except the last
    unknown one, which takes what the known ones leave."""
    if not dims:
        return [window]
    known = int(np.prod([d for d in dims if d and d > 0])) if any(d and d > 0 for d in dims) else 1
    shape = [d if d and d > 0 else 1 for d in dims]
    free = [i for i, d in enumerate(dims) if not d or d <= 0]
    if free and window % known == 0:
        shape[free[-1]] = window // known
        return shape
    if not free and known == window:
        return shape
    raise ValueError(f"the model's input has shape {dims}, which does not take a window of {window} samples")


@builtin
class Model(BuiltinNode):
    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        """A window is run once it is whole."""
        p = cls.filled(params)
        return None if p is None else max(p["window"] - 1, 0)

    def __init__(self, model_path: str, window: int, emit: str, hop: int | None = None, input: str | None = None,
                 output: str | None = None):
        try:
            self.graph = graph(model_path, input, output)
        except ModelFileError as e:
            raise ParamError("model_path", str(e)) from None
        try:
            self.shape = fit(self.graph.input_dims, window)
        except ValueError as e:
            raise ParamError("window", str(e)) from None
        try:
            self.graph.run(np.zeros(self.shape, np.float32))
        except Exception as e:  # onnxruntime's own errors
            raise ParamError("window", f"the model does not run on a window of {window} samples: {e}") from None
        self.window, self.hop, self.audio = window, hop or window, emit == "audio"
        self.rate = None

    def latency(self) -> int:
        return self.window - 1

    def _run(self, samples: np.ndarray) -> Emit:
        try:
            y = self.graph.run(samples.reshape(self.shape))
        except Exception as e:  # onnxruntime's own errors
            raise NodeError(f"Model: {e}") from None
        if self.audio:
            return Emit("out", Audio(y.reshape(-1), self.rate))
        return Emit("out", {"start": self.position / self.rate, "shape": list(y.shape),
                            "values": [float(v) for v in y.reshape(-1)]})

    def process(self, data):
        mono_f32(data, "Model")
        if self.rate is None:
            self.rate, self.pending, self.seen, self.skip, self.position = data.sample_rate, np.zeros(0, np.float32), 0, 0, 0
        elif data.sample_rate != self.rate:
            raise NodeError("Model got a chunk whose rate differs from the stream's first")
        self.pending = np.concatenate([self.pending, data.samples])
        out = []
        while True:
            skip = min(self.skip, len(self.pending))
            self.pending, self.skip, self.position = self.pending[skip:], self.skip - skip, self.position + skip
            if self.skip or len(self.pending) < self.window:
                return out
            out.append(self._run(self.pending[:self.window]))
            step = min(self.hop, self.window)
            self.pending, self.position = self.pending[step:], self.position + step
            self.skip, self.seen = self.hop - step, self.window - step

    def flush(self):
        if self.rate is None:
            return None
        out = []
        if self.skip == 0 and len(self.pending) > self.seen:
            last = np.zeros(self.window, np.float32)
            last[:len(self.pending)] = self.pending
            out.append(self._run(last))
        self.rate = None  # the stream is over; a new one may follow
        return out
