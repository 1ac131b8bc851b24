"""FormatConverter reference: the package's one conversion convention (convert.py)."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..convert import convert
from ..node import Node, ParamError, register_node
from . import audio_input

FORMATS = {"f32": np.float32, "i16": np.int16, "i32": np.int32, "f64": np.float64}


@register_node
class FormatConverter(Node):
    """Converts samples to f32, i16, i32 or f64 (full scale ±1.0; rounding half to even, clipping, NaN → 0)."""

    node_type = "FormatConverter"
    params_schema = {"type": "object", "properties": {"format": {"enum": list(FORMATS)}},
                     "required": ["format"], "additionalProperties": False}

    def __init__(self, format: str):
        if format not in FORMATS:
            raise ParamError("format", f"unknown variant `{format}`, expected one of {', '.join(FORMATS)}")
        self.dtype = np.dtype(FORMATS[format])

    def process(self, data):
        audio_input(data, "FormatConverter")
        return Audio(convert(data.samples, self.dtype), data.sample_rate)
