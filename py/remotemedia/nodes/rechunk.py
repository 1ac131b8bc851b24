"""Rechunk reference: fixed-size frames from arbitrary chunks."""

from __future__ import annotations

import numpy as np

from ..audio import DTYPE_OF, Audio
from ..errors import InvalidInputError, NodeError
from ..node import ParamError
from ._common import BuiltinNode, audio_input, budget_samples, builtin


def _frames(frame_ms: float | None, frame_samples: int | None, rate: int) -> int:
    """Frames per output frame at ``rate``, or the NodeError for a frame_ms that gives no whole number."""
    if frame_samples is not None:
        return frame_samples
    exact = frame_ms * rate / 1000.0
    if exact != int(exact) or exact < 1:
        raise NodeError(f"frame_ms {frame_ms} is not a whole number of frames at {rate} Hz")
    return int(exact)


@builtin
class Rechunk(BuiltinNode):
    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        """A sample waits for the rest of its frame."""
        p = cls.filled(params)
        if p is None or caps[3] is None or (p.get("frame_ms") is None) == (p.get("frame_samples") is None):
            return None
        try:
            return _frames(p.get("frame_ms"), p.get("frame_samples"), caps[3]) - 1
        except NodeError:
            return None

    def __init__(self, tail: str, frame_ms: float | None = None, frame_samples: int | None = None):
        if (frame_ms is None) == (frame_samples is None):
            raise ParamError("", "give exactly one of frame_ms and frame_samples")
        self.frame_ms, self.frame_samples, self.tail = frame_ms, frame_samples, tail
        self.pending = None
        self.layout = None

    def latency(self) -> int:
        return 0 if self.layout is None else self.size - 1

    def _frames(self, rate: int) -> int:
        return _frames(self.frame_ms, self.frame_samples, rate)

    def _start(self, dtype, channels: int, rate: int) -> None:
        self.size = self._frames(rate)
        budget_samples("Rechunk frame", self.size, channels)
        self.layout = (np.dtype(dtype), channels, rate)
        self.pending = np.zeros((0, channels), dtype)

    def configure(self, inputs):
        """Sizes the frame for the negotiated format, when all of it is known."""
        kind, fmt, channels, rate = inputs[0]
        if kind == "audio" and None not in (fmt, channels, rate):
            self._start(DTYPE_OF[fmt], channels, rate)

    def process(self, data):
        audio_input(data, "Rechunk")
        layout = (data.samples.dtype, data.channels, data.sample_rate)
        if self.layout is None:
            self._start(*layout)
        elif layout != self.layout:
            names = {np.dtype(dtype): name for name, dtype in DTYPE_OF.items()}
            raise InvalidInputError(
                f"its input port in got a chunk of {names[layout[0]]}, {layout[1]} ch, {layout[2]} Hz; the stream is "
                f"{names[self.layout[0]]}, {self.layout[1]} ch, {self.layout[2]} Hz (configured, or its first chunk)")
        self.pending = np.concatenate([self.pending, data.samples.reshape(-1, data.channels)])
        whole = len(self.pending) // self.size * self.size
        out = [self._audio(self.pending[i:i + self.size]) for i in range(0, whole, self.size)]
        self.pending = self.pending[whole:]
        return out

    def flush(self):
        if self.pending is None or len(self.pending) == 0:
            return None
        last, self.pending = self.pending, self.pending[:0]  # the next push starts a new stream
        if self.tail == "drop":
            return None
        if self.tail == "pad":
            last = np.concatenate([last, np.zeros((self.size - len(last), last.shape[1]), last.dtype)])
        return self._audio(last)

    def _audio(self, frames: np.ndarray) -> Audio:
        return Audio(np.ascontiguousarray(frames), self.layout[2])
