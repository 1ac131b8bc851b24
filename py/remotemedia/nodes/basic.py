"""PassThrough and Gain: the reference twins of native/src/nodes/basic.rs."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ._common import BuiltinNode, audio_input, builtin


@builtin
class PassThrough(BuiltinNode):
    def process(self, data):
        return data


@builtin
class Gain(BuiltinNode):
    def __init__(self, gain_db: float):
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
