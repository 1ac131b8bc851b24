"""Reference (pure numpy) implementations of the built-in node types."""

from . import basic, downmix, fault, format, rechunk, resample, vad  # noqa: F401  (register on import)
