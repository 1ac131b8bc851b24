"""Reference (pure numpy) implementations of the built-in node types."""

import numpy as np

from ..audio import Audio
from ..errors import NodeError


def audio_input(data, node_type: str, f32: bool = False) -> Audio:
    """``data`` as audio, or the NodeError the native node gives for it."""
    if not isinstance(data, Audio):
        raise NodeError(f"{node_type} takes audio, got a JSON event")
    if f32 and data.samples.dtype != np.float32:
        raise NodeError(f"{node_type} takes f32 audio, got {data.samples.dtype}; "
                        f"put a FormatConverter with format \"f32\" before it")
    return data


from . import basic, downmix, fault, format, rechunk, resample, vad  # noqa: E402, F401  (register on import)
