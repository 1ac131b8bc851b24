"""What the reference twins of the built-in nodes share: their spec from the contract
file, params checked against it, and the input checks of the native nodes."""

from __future__ import annotations

import numpy as np

from .._contract import MAX_BUFFER_SAMPLES, NODES
from .._schema import SchemaError, validate
from ..audio import DTYPE_OF, Audio
from ..errors import InvalidInputError, NodeError
from ..model import EngineMissingError, ModelFileError, Session, session
from ..node import Node, ParamError, register_node


class BuiltinNode(Node):
    """A twin of a built-in native node: ``node_type``, ``outputs``, ``params_schema``
    and the description come from the contract, and ``create`` checks params against
    the schema and fills in its defaults before ``__init__`` sees them."""

    breaks_like_native = True

    @classmethod
    def check_params(cls, params: dict) -> dict:
        try:
            return validate(params, cls.params_schema)
        except SchemaError as e:
            raise ParamError(e.path, str(e)) from None

    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        """0 unless the twin says otherwise: it emits as soon as it receives."""
        return 0

    @classmethod
    def filled(cls, params: dict) -> dict | None:
        """``params`` with defaults filled in, or None when they are not valid."""
        try:
            return cls.check_params(params)
        except ParamError:
            return None

    @classmethod
    def create(cls, params: dict) -> Node:
        filled = cls.check_params(params)
        node = cls(**filled)
        node._params = filled
        return node


def builtin(cls: type[BuiltinNode]) -> type[BuiltinNode]:
    """Class decorator: gives the twin named like a built-in node type its spec and registers it."""
    spec = NODES[cls.__name__]
    cls.node_type, cls.outputs, cls.params_schema = spec["node_type"], tuple(spec["outputs"]), spec["params"]
    cls.caps = spec["caps"]
    cls.__doc__ = spec["description"]
    return register_node(cls)


def audio_input(data, node_type: str, f32: bool = False) -> Audio:
    """``data`` as audio, or the NodeError the native node gives for it."""
    if not isinstance(data, Audio):
        raise NodeError(f"{node_type} takes audio, got a JSON event")
    if f32 and data.samples.dtype != np.float32:
        name = next(n for n, dtype in DTYPE_OF.items() if dtype == data.samples.dtype)
        raise NodeError(f"{node_type} takes f32 audio, got {name}; put a FormatConverter with format \"f32\" before it")
    return data


def mono_f32(data, node_type: str) -> Audio:
    """``data`` as mono f32 audio with finite samples (what VAD and Model take), or the
    error the native nodes give."""
    audio_input(data, node_type, f32=True)
    require_finite(data.samples, node_type)
    if data.channels != 1:
        raise NodeError(f"{node_type} takes mono audio, got {data.channels} channels; put a Downmix before it")
    return data


def budget_samples(what: str, frames: int, channels: int) -> int:
    """``frames × channels``, or the InvalidInputError native nodes give over the sample budget."""
    n = frames * channels
    if n > MAX_BUFFER_SAMPLES:
        raise InvalidInputError(f"{what} of {frames} frames x {channels} channels is over the budget of "
                                f"{MAX_BUFFER_SAMPLES} samples")
    return n


def require_finite(samples: np.ndarray, node_type: str) -> None:
    """The InvalidInputError native nodes give for a NaN or an infinity in their input."""
    bad = ~np.isfinite(samples.reshape(-1))
    if bad.any():
        raise InvalidInputError(f"{node_type} refuses non-finite samples (NaN or infinity; the first is sample "
                                f"{int(np.argmax(bad))}); the chunk was not processed")


def onnx_session(model_path: str) -> Session:
    """The model at ``model_path`` on onnxruntime, or the ParamError naming the param at
    fault: ``model_path`` (missing, not ONNX) or ``engine`` (onnxruntime missing)."""
    try:
        return session(model_path)
    except ModelFileError as e:
        raise ParamError("model_path", str(e)) from None
    except EngineMissingError as e:
        raise ParamError("engine", str(e)) from None
