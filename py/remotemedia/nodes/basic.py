"""PassThrough and Gain: the reference twins of native/src/nodes/basic.rs."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..node import Node, ParamError, register_node
from . import audio_input


@register_node
class PassThrough(Node):
    """Emits every input unchanged (no copy)."""

    node_type = "PassThrough"
    params_schema = {"type": "object", "properties": {}, "additionalProperties": False}

    def process(self, data):
        return data


@register_node
class Gain(Node):
    """Scales audio by gain_db decibels; integers are rounded half to even and clipped."""

    node_type = "Gain"
    params_schema = {
        "type": "object",
        "properties": {"gain_db": {"type": "number", "minimum": -120, "maximum": 120, "default": 0}},
        "additionalProperties": False,
    }

    def __init__(self, gain_db: float = 0.0):
        if isinstance(gain_db, bool) or not isinstance(gain_db, (int, float)):
            raise ParamError("gain_db", f"expected a number, got {gain_db!r}")
        if not np.isfinite(gain_db) or not -120.0 <= gain_db <= 120.0:
            raise ParamError("gain_db", f"{gain_db} is outside -120..=120 dB")
        self.factor = 10.0 ** (gain_db / 20.0)

    def process(self, data):
        audio_input(data, "Gain")
        x = data.samples
        if x.dtype == np.float32:
            y = x * np.float32(self.factor)
        elif x.dtype == np.float64:
            y = x * self.factor
        else:
            info = np.iinfo(x.dtype)
            y = np.clip(np.rint(x.astype(np.float64) * self.factor), info.min, info.max).astype(x.dtype)
        return Audio(y, data.sample_rate)
