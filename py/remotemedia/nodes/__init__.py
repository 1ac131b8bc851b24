"""Reference (pure numpy) implementations of the built-in node types, registered on import."""

from . import basic, downmix, fault, format, mix, model, rechunk, resample, turn, vad  # noqa: F401
