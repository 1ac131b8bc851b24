"""Rechunk reference: fixed-size frames from arbitrary chunks."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..errors import NodeError
from ..node import Node, ParamError, register_node
from . import audio_input

TAILS = ("pad", "emit", "drop")


@register_node
class Rechunk(Node):
    """Re-frames audio into frames of frame_ms milliseconds or frame_samples frames; at the end the partial frame is zero-padded (tail "pad"), emitted short ("emit") or dropped ("drop")."""

    node_type = "Rechunk"
    params_schema = {"type": "object", "properties": {
        "frame_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
        "frame_samples": {"type": "integer", "minimum": 1, "maximum": 10000000},
        "tail": {"enum": list(TAILS), "default": "pad"}}, "additionalProperties": False}

    def __init__(self, frame_ms: float | None = None, frame_samples: int | None = None, tail: str = "pad"):
        if (frame_ms is None) == (frame_samples is None):
            raise ParamError("", "give exactly one of frame_ms and frame_samples")
        if frame_ms is not None and (isinstance(frame_ms, bool) or not isinstance(frame_ms, (int, float))
                                     or not 0 < frame_ms <= 10000):
            raise ParamError("frame_ms", f"{frame_ms} is outside (0, 10000]")
        if frame_samples is not None and (isinstance(frame_samples, bool) or not isinstance(frame_samples, int)
                                          or not 1 <= frame_samples <= 10_000_000):
            raise ParamError("frame_samples", f"{frame_samples} is outside 1..=10000000")
        if tail not in TAILS:
            raise ParamError("tail", f"unknown variant `{tail}`, expected one of {', '.join(TAILS)}")
        self.frame_ms, self.frame_samples, self.tail = frame_ms, frame_samples, tail
        self.pending = None
        self.layout = None

    def _frames(self, rate: int) -> int:
        if self.frame_samples is not None:
            return self.frame_samples
        exact = self.frame_ms * rate / 1000.0
        if exact != int(exact) or exact < 1:
            raise NodeError(f"frame_ms {self.frame_ms} is not a whole number of frames at {rate} Hz")
        return int(exact)

    def process(self, data):
        audio_input(data, "Rechunk")
        layout = (data.samples.dtype, data.channels, data.sample_rate)
        if self.layout is None:
            self.size = self._frames(data.sample_rate)
            self.layout = layout
            self.pending = data.samples[:0].reshape(0, data.channels)
        elif layout != self.layout:
            raise NodeError("Rechunk got a chunk whose format, channels or rate differs from the stream's first")
        self.pending = np.concatenate([self.pending, data.samples.reshape(-1, data.channels)])
        whole = len(self.pending) // self.size * self.size
        out = [self._audio(self.pending[i:i + self.size]) for i in range(0, whole, self.size)]
        self.pending = self.pending[whole:]
        return out

    def flush(self):
        if self.pending is None or len(self.pending) == 0 or self.tail == "drop":
            return None
        last = self.pending
        if self.tail == "pad":
            last = np.concatenate([last, np.zeros((self.size - len(last), last.shape[1]), last.dtype)])
        self.pending = last[:0]
        return self._audio(last)

    def _audio(self, frames: np.ndarray) -> Audio:
        return Audio(np.ascontiguousarray(frames), self.layout[2])
