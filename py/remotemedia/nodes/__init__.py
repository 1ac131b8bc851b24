"""Reference (pure numpy) implementations of the built-in node types."""

from . import basic  # noqa: F401  (registers on import)
