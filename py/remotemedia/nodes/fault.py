"""Fault reference: fault injection for testing retries, breakers and error handling."""

from __future__ import annotations

import os
import signal
import time

from ..errors import NodeError, TransientError
from ..isolation import in_child
from ..node import ParamError
from ._common import BuiltinNode, builtin


@builtin
class Fault(BuiltinNode):
    def __init__(self, fail_first: int, mode: str, hang_ms: int):
        if mode in ("abort", "segfault") and not in_child():
            raise ParamError("mode", "modes 'abort' and 'segfault' end the process, so they run only under isolation "
                                     "'process'")
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
            if self.mode == "abort":
                os.abort()
            if self.mode == "segfault":
                signal.signal(signal.SIGSEGV, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGSEGV)
            if self.mode == "hang":
                time.sleep(self.hang_ms / 1000)
                return data
            raise RuntimeError(f"panicked: {message}")
        return data
