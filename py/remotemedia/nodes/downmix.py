"""Downmix reference: mono mix (left-to-right sum / n) or a channel map."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..errors import NodeError
from ..node import Node, ParamError, register_node
from . import audio_input

MAX_CHANNELS = 64


@register_node
class Downmix(Node):
    """Mixes all channels to mono (float audio: left-to-right sum / n), or with `map` picks input channels by index for each output channel (any format)."""

    node_type = "Downmix"
    params_schema = {"type": "object", "properties": {"map": {
        "type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": MAX_CHANNELS}},
        "additionalProperties": False}

    def __init__(self, map: list[int] | None = None):
        if map is not None:
            if not isinstance(map, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                    for c in map):
                raise ParamError("map", "map must be a list of channel indices")
            if not 1 <= len(map) <= MAX_CHANNELS:
                raise ParamError("map", f"map must list 1 to {MAX_CHANNELS} channels")
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
