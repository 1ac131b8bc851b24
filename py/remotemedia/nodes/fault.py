"""Fault reference: fault injection for testing retries, breakers and error handling."""

from __future__ import annotations

import time

from ..errors import NodeError, TransientError
from ..node import Node, ParamError, register_node

MODES = ("transient", "permanent", "panic", "hang")


@register_node
class Fault(Node):
    """Fault injection: its first fail_first process calls (over its whole life, across runs) fail transiently, permanently, by panicking, or hang for hang_ms; later calls pass input through."""

    node_type = "Fault"
    params_schema = {"type": "object", "properties": {
        "fail_first": {"type": "integer", "minimum": 0, "default": 0},
        "mode": {"enum": list(MODES), "default": "transient"},
        "hang_ms": {"type": "integer", "minimum": 0, "default": 60000}}, "additionalProperties": False}

    def __init__(self, fail_first: int = 0, mode: str = "transient", hang_ms: int = 60000):
        if isinstance(fail_first, bool) or not isinstance(fail_first, int) or fail_first < 0:
            raise ParamError("fail_first", f"expected a non-negative integer, got {fail_first!r}")
        if mode not in MODES:
            raise ParamError("mode", f"unknown variant `{mode}`, expected one of {', '.join(MODES)}")
        if isinstance(hang_ms, bool) or not isinstance(hang_ms, int) or hang_ms < 0:
            raise ParamError("hang_ms", f"expected a non-negative integer, got {hang_ms!r}")
        self.fail_first, self.mode, self.hang_ms, self.calls = fail_first, mode, hang_ms, 0

    def reset(self):
        """Keeps the call count, so faults can span runs (as the native node does)."""

    def process(self, data):
        self.calls += 1
        if self.calls <= self.fail_first:
            message = f"injected fault {self.calls} of {self.fail_first}"
            if self.mode == "transient":
                raise TransientError(message)
            if self.mode == "permanent":
                raise NodeError(message)
            if self.mode == "hang":
                time.sleep(self.hang_ms / 1000)
                return data
            raise RuntimeError(f"panicked: {message}")
        return data
