"""The exception hierarchy. Native errors arrive as these, with the same attributes."""

from __future__ import annotations

from ._contract import SUGGEST_MAX_CHARS


class RemoteMediaError(Exception):
    """Root of every remotemedia error.

    Attributes: ``node_id`` and ``operation`` (``create``/``configure``/``process``/``flush``/``reset``)
    when a node is involved, else None; ``retryable`` when repeating may succeed.
    """

    def __init__(self, message: str, *, node_id: str | None = None, operation: str | None = None,
                 retryable: bool = False):
        super().__init__(message)
        self.node_id = node_id
        self.operation = operation
        self.retryable = retryable


class ManifestError(RemoteMediaError, ValueError):
    """The manifest is invalid. ``path`` names the field, e.g. ``nodes[1].params.gain_db``.
    A NUL in a key is written ``\\0``, as the native runtime's C strings carry it."""

    def __init__(self, path: str, message: str):
        path = path.replace("\0", "\\0")
        super().__init__(f"manifest error at {path}: {message}")
        self.path = path


class GraphError(RemoteMediaError):
    """The graph cannot run."""


class CycleError(GraphError):
    """The graph has a cycle; ``nodes`` lists it, first node repeated at the end."""

    def __init__(self, nodes: list[str]):
        super().__init__("graph has a cycle: " + " -> ".join(nodes))
        self.nodes = nodes


class NodeError(RemoteMediaError):
    """A node failed. A Python exception raised by a Python node is the ``__cause__``."""


class CircuitOpenError(NodeError):
    """The node's circuit breaker is open after repeated failures: it was not called."""


class NodeTimeoutError(NodeError, TimeoutError):
    """A node call ran past its ``timeout_ms``; the instance is not called again."""


class PluginError(RemoteMediaError):
    """A plugin library could not be loaded, or one of its nodes could not be created.
    ``file`` is the library's path; the message says why. When a node's ``create``
    refused its params, ``path`` names them (``nodes[0].params``); else None."""

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.file, self.path = file, path


class InvalidInputError(RemoteMediaError, ValueError):
    """Input the runtime cannot take: wrong dtype, shape, layout or rate."""


class TransientError(RemoteMediaError):
    """Raised by a node to say the failure may pass if the call is retried."""

    def __init__(self, message: str, **kwargs):
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)


class QueueFullError(RemoteMediaError):
    """A stream's output queue stayed full for the whole push timeout: pull outputs."""


class StreamClosedError(RemoteMediaError):
    """The stream is closed."""


class CancelledError(RemoteMediaError):
    """A call waiting inside the runtime was interrupted (a blocked push, by close); its
    chunk was not processed."""


class SessionError(RemoteMediaError):
    """Sessions of a session group failed in one call (``push`` or ``flush``).

    ``failures`` maps each failed session's id to its error (a RemoteMediaError
    subclass: InvalidInputError for an unknown or closed id or a refused chunk,
    NodeError for a failing node, ...). A failed session lost its outputs of that call
    only and stays open; every other session's chunks were processed and their outputs
    queued. ``node_id``, ``operation`` and ``retryable`` are the first failure's.
    """

    def __init__(self, failures: dict[int, RemoteMediaError]):
        first = failures[min(failures)]
        super().__init__("\n".join(f"session {sid}: {e}" for sid, e in sorted(failures.items())),
                         node_id=first.node_id, operation=first.operation, retryable=first.retryable)
        self.failures = failures



def did_you_mean(name: str, known) -> str:
    """"; did you mean 'X'?" when one of ``known`` is close to ``name`` (edit distance,
    case ignored, of at most a third of its length and at least 2; the nearest, the
    first on ties), else "". As the native runtime's ``error::did_you_mean``."""
    if len(name) > SUGGEST_MAX_CHARS:
        return ""
    lowered, limit = name.lower(), max(len(name) // 3, 2)
    scored = [(_edit_distance(lowered, k.lower()), k) for k in known if abs(len(k) - len(name)) <= limit]
    close = [(d, k) for d, k in scored if d <= limit]
    return f"; did you mean '{min(close, key=lambda c: c[0])[1]}'?" if close else ""


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over characters."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        diagonal, row[0] = row[0], i + 1
        for j, cb in enumerate(b):
            above = row[j + 1]
            row[j + 1] = min(above + 1, row[j] + 1, diagonal + (ca != cb))
            diagonal = above
    return row[len(b)]
