"""FormatConverter reference: the package's one conversion convention (convert.py)."""

from __future__ import annotations

import numpy as np

from ..audio import DTYPE_OF, Audio
from ..convert import convert
from ._common import BuiltinNode, audio_input, builtin


@builtin
class FormatConverter(BuiltinNode):
    def __init__(self, format: str):
        self.dtype = np.dtype(DTYPE_OF[format])

    def process(self, data):
        audio_input(data, "FormatConverter")
        return Audio(convert(data.samples, self.dtype), data.sample_rate)
