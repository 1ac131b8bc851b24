"""Mix reference: the weighted sum of N inputs, sample-aligned (native: nodes/audio/mix.rs)."""

from __future__ import annotations

import numpy as np

from .._contract import MAX_BUFFER_SAMPLES
from ..audio import Audio
from ..errors import InvalidInputError
from ._common import BuiltinNode, audio_input, builtin


@builtin
class Mix(BuiltinNode):
    def __init__(self, gains: list[float]):
        self.gains = [np.float32(g) for g in gains]
        self.pending = [np.zeros(0, np.float32) for _ in gains]
        self.layout: tuple[int, int] | None = None  # channels and rate of the stream

    def process(self, data):
        return self.process_port(0, data)

    def process_port(self, port: int, data):
        audio_input(data, "Mix", f32=True)
        layout = (data.channels, data.sample_rate)
        if self.layout is None:
            self.layout = layout
        elif layout != self.layout:
            raise InvalidInputError(f"Mix input in{port} brings {layout[0]} ch at {layout[1]} Hz, the stream's first "
                                    f"chunk {self.layout[0]} ch at {self.layout[1]} Hz; its inputs must agree")
        held = len(self.pending[port]) + data.samples.size
        if held > MAX_BUFFER_SAMPLES:
            raise InvalidInputError(f"Mix input in{port} holds {held} samples waiting for the other inputs, over the "
                                    f"budget of {MAX_BUFFER_SAMPLES}")
        self.pending[port] = np.concatenate([self.pending[port], data.samples.reshape(-1)])
        return self._take(min(len(x) for x in self.pending) // layout[0])

    def flush(self):
        if self.layout is None:
            return None
        channels = self.layout[0]
        return self._take(-(-max(len(x) for x in self.pending) // channels))

    def _take(self, frames: int):
        """The first ``frames`` frames of every input mixed (missing samples as zeros),
        taken out of ``pending``."""
        if frames == 0 or self.layout is None:
            return None
        channels, rate = self.layout
        n = frames * channels

        def head(x: np.ndarray) -> np.ndarray:
            return x[:n] if len(x) >= n else np.concatenate([x, np.zeros(n - len(x), np.float32)])

        mixed = self.gains[0] * head(self.pending[0])
        for gain, x in zip(self.gains[1:], self.pending[1:]):
            mixed += gain * head(x)
        self.pending = [x[n:] for x in self.pending]
        return Audio(mixed if channels == 1 else mixed.reshape(-1, channels), rate)

    def reset(self):
        self.pending = [np.zeros(0, np.float32) for _ in self.gains]
        self.layout = None
