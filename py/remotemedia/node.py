"""The Python node interface and the registry of Python node types.

Every built-in node has a pure-numpy implementation here under the same ``node_type``
as its native twin: the fallback runtime, and the oracle the native nodes are tested
against. User nodes subclass :class:`Node` and are registered with
:func:`register_node`; third-party packages expose them through the entry-point group
``remotemedia.nodes``. A manifest can only name registered types: it never imports.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from ._schema import SchemaError, check_bounds, check_shape
from .audio import Audio
from .caps import check_decl
from .errors import InvalidInputError, RemoteMediaError

ENTRY_POINT_GROUP = "remotemedia.nodes"


class ParamError(ValueError):
    """Raised by a node constructor to reject one of its params."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Emit:
    """An output item for a port other than the default (first) one."""

    port: str
    data: Any


class Node(ABC):
    """Base class of Python nodes.

    Params are constructor keyword arguments. ``process`` and ``flush`` return None, one
    item, or a list of items; an item is an :class:`~remotemedia.Audio`, a JSON-like
    value (dict or list), or an :class:`Emit` for another port.
    """

    #: Name used in manifests.
    node_type: ClassVar[str] = ""
    #: True for the twins of the native built-in nodes: an exception out of one that is
    #: not a RemoteMediaError is its twin's panic, and poisons the instance as a panic
    #: does natively. Other Python nodes' exceptions are ordinary failures on both runtimes.
    breaks_like_native: ClassVar[bool] = False
    #: Output port names; the first is the default.
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    #: JSON Schema of the params (informational, shown by ``remotemedia nodes``).
    params_schema: ClassVar[dict] = {"type": "object"}
    #: What the ports carry (docs/ARCHITECTURE.md, "Caps"): ``{"input": {...},
    #: "outputs": {port: {...}}}``, and for several input ports ``"inputs": {port:
    #: {...}}`` (then implement ``process_port``); None accepts anything on one input
    #: port and produces what is not known before data flows, so no converter is
    #: inserted around the node.
    caps: ClassVar[dict | None] = None

    @abstractmethod
    def process(self, data):
        """Handles one input item; returns the output items."""

    def process_port(self, port: int, data):
        """Handles one input item that arrived at input port ``port`` (an index into the
        node's input ports, in the order its ``caps`` declares them). Only a node with
        several input ports is called here, for every item; one with a single port gets
        its items in ``process``."""
        return self.process(data)

    def configure(self, inputs: list[tuple]) -> None:
        """Called once per stream (a run, or a stream's pushes up to a flush), after a
        reset and before the first item, with the caps negotiated for each input port
        (4-tuples as :mod:`remotemedia.caps` has them; None where not known before data
        flows). Size state here; raise InvalidInputError to refuse caps. The default
        keeps nothing."""
        return None

    def flush(self):
        return None

    def reset(self):
        """Forget stream state. The default re-runs ``__init__`` with the same params."""
        self.__init__(**self._params)

    def latency(self) -> int:
        """Worst-case lag of output behind input, in frames at the output rate."""
        return 0

    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        """The algorithmic latency a node with ``params`` has when its input carries
        ``caps`` (see :mod:`remotemedia.caps`): the most output frames an input sample
        may wait in it; None when not known (the default)."""
        return None

    @classmethod
    def create(cls, params: dict) -> Node:
        """Instantiates with ``params``; params outside ``params_schema`` (checked as
        ``_schema`` does, the subset both runtimes share), unknown or bad params raise
        :class:`ParamError`."""
        params = cls.check_params(params)
        try:
            node = cls(**params)
        except TypeError as e:
            raise ParamError("", str(e)) from e
        node._params = params
        return node

    @classmethod
    def check_params(cls, params: dict) -> dict:
        """The params ``create`` passes to the constructor, checked without making a
        node: the schema, and names the constructor takes. Raises :class:`ParamError`."""
        try:
            check_shape(params, cls.params_schema, "")
            check_bounds(params, cls.params_schema, "")
        except SchemaError as e:
            raise ParamError(e.path, f"{e} (the node type's params schema)") from None
        except (KeyError, TypeError, AttributeError) as e:
            raise ParamError("", f"{cls.node_type}.params_schema cannot be checked: {e!r}") from None
        accepted = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        for name in params:
            if not takes_any and name not in accepted:
                raise ParamError(name, f"unknown param '{name}' for {cls.node_type}")
        return dict(params)

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def encode_json(item) -> str:
    """An emitted JSON item as text, as it crosses to the native runtime; raises
    TypeError or ValueError for what JSON cannot carry (objects, NaN)."""
    return json.dumps(item, allow_nan=False)


def as_emitted(item):
    """An emitted item as it leaves the native runtime: audio as it is, JSON encoded and
    decoded (tuples become lists, keys strings); what JSON cannot carry is an error."""
    return item if isinstance(item, Audio) else json.loads(encode_json(item))


def emitted(result, node: Node) -> list[tuple[int, object]]:
    """(port, item) pairs of a node call's result, each item as the native runtime emits it."""
    if result is None:  # the usual results, in short
        return []
    if result.__class__ is Audio:
        return [(0, result)]
    return [(port, as_emitted(item)) for port, item in outputs_of(result, node)]


def outputs_of(result, node: Node) -> list[tuple[int, object]]:
    """Normalizes what ``process``/``flush`` returned into (port index, item) pairs."""
    if result is None:
        return []
    items = result if isinstance(result, list) else [result]
    pairs = []
    for item in items:
        port = 0
        if isinstance(item, Emit):
            if item.port not in node.outputs:
                raise RemoteMediaError(f"no output port '{item.port}'; ports: {', '.join(node.outputs)}")
            port, item = node.outputs.index(item.port), item.data
        pairs.append((port, item))
    return pairs


_REGISTRY: dict[str, type[Node]] = {}
_entry_points_loaded = False


def register_node(cls: type[Node]) -> type[Node]:
    """Class decorator: makes ``cls`` usable by its ``node_type`` in any pipeline."""
    if not (isinstance(cls, type) and issubclass(cls, Node)) or not isinstance(cls.node_type, str) or not cls.node_type:
        raise InvalidInputError("register_node takes a Node subclass with a non-empty node_type")
    outputs = cls.outputs
    if not isinstance(outputs, tuple) or not outputs or not all(isinstance(p, str) for p in outputs):
        raise InvalidInputError(f"{cls.node_type}.outputs must be a non-empty tuple of port names, got {outputs!r}")
    for i, name in enumerate(outputs):
        problem = "is empty" if not name else "contains '.'" if "." in name else "is given twice" if name in outputs[:i] else None
        if problem:
            raise InvalidInputError(f"node type '{cls.node_type}': output port name '{name}' (outputs[{i}]) {problem}")
    if cls.caps is not None:
        why = check_decl(cls.caps, outputs)
        if why:
            raise InvalidInputError(f"node type '{cls.node_type}': {why}")
    _REGISTRY[cls.node_type] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_node(ep.load())
        except Exception as e:  # a broken third-party package must not break the others
            raise RemoteMediaError(f"entry point '{ep.name}' in group {ENTRY_POINT_GROUP} failed: {e}") from e


def lookup(node_type: str) -> type[Node] | None:
    """The Python implementation of ``node_type``, if one is registered."""
    _load_entry_points()
    return _REGISTRY.get(node_type)


def registered() -> dict[str, type[Node]]:
    """Every registered Python node type."""
    _load_entry_points()
    return dict(_REGISTRY)
