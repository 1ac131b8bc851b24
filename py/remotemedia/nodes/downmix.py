"""Downmix reference: mono mix (left-to-right sum / n) or a channel map."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..errors import NodeError
from ._common import BuiltinNode, audio_input, builtin


@builtin
class Downmix(BuiltinNode):
    def __init__(self, map: list[int] | None = None):
        self.map = map

    def process(self, data):
        audio_input(data, "Downmix")
        x = data.samples
        channels = data.channels
        if self.map is None:
            if channels == 1:
                return data
            if x.dtype.kind != "f":
                raise NodeError(f"Downmix mixes float audio, got {x.dtype}; convert first, or use `map` to pick channels")
            acc = x[:, 0].copy()
            for c in range(1, channels):
                acc += x[:, c]
            return Audio(acc / x.dtype.type(channels), data.sample_rate)
        bad = [c for c in self.map if c >= channels]
        if bad:
            raise NodeError(f"map names channel {bad[0]}, but the audio has {channels} channels")
        frames = x.reshape(-1, channels)
        return Audio(np.ascontiguousarray(frames[:, self.map]), data.sample_rate)
