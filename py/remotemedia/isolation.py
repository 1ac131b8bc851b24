"""Process isolation for the pure-Python runtime (``"isolation": "process"``): the node
runs in a child process, so a crash, an abort or a hang there fails that node's call
and the child is restarted, as on the native runtime (native/src/isolation).

Children are forks of the host (multiprocessing's "fork" context): they start in about
a millisecond, run any node class the host can (no pickling of the class, no re-run
of the main script), and only ever run the node's own Python code. The cost: a fork
of a host whose other threads hold locks the node then needs could wait forever in
the child; the node's `timeout_ms` then applies as to any hang. Items travel pickled:
this is the fallback runtime; the native one sends audio through shared memory.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading

from ._contract import MAX_NODE_PROCESSES
from .errors import InvalidInputError, TransientError
from .node import Node, ParamError, emitted

#: Longest wait for a new child to create its node (longer if the node's timeout is).
STARTUP_DEADLINE_S = 30.0

_SIGNALS = {signal.SIGSEGV: "SIGSEGV", signal.SIGABRT: "SIGABRT", signal.SIGBUS: "SIGBUS", signal.SIGFPE: "SIGFPE",
            signal.SIGILL: "SIGILL", signal.SIGKILL: "SIGKILL", signal.SIGTERM: "SIGTERM", signal.SIGTRAP: "SIGTRAP",
            signal.SIGSYS: "SIGSYS"}

_context = None
_in_child = False
_live = 0  # children alive now, at most MAX_NODE_PROCESSES
_live_lock = threading.Lock()


def in_child() -> bool:
    """True in an isolated node's own process, where a node may end the process on purpose."""
    return _in_child


def _ctx():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("fork")
    return _context


class Stopped(Exception):
    """A call stopped at its deadline: the executor reports it as a NodeTimeoutError."""


class ProcessNode:
    """Stands in for a node of ``cls`` whose instance lives in a child process."""

    def __init__(self, cls: type[Node], params: dict, timeout_ms: int | None):
        self.node_type, self.outputs = cls.node_type, cls.outputs
        self._cls, self._params, self._timeout_ms = cls, params, timeout_ms
        self._conn = self._proc = None
        self._latency = 0
        self._start()

    # ---- the child's life -----------------------------------------------------------

    def _start(self) -> None:
        """Starts a child and creates the node in it; ParamError if it refuses its params."""
        global _live
        with _live_lock:
            if _live >= MAX_NODE_PROCESSES:
                raise TransientError(f"{_live} isolated nodes' processes are running, the most at once in a process "
                                     f"({MAX_NODE_PROCESSES})")
            _live += 1
        try:
            ours, theirs = _ctx().Pipe()
            proc = _ctx().Process(target=_serve, args=(theirs, self._cls, self._params), daemon=True)
            proc.start()
        except OSError as e:
            with _live_lock:
                _live -= 1
            raise TransientError(f"cannot start its process: {e}") from None
        theirs.close()
        self._conn, self._proc = ours, proc
        wait = max(STARTUP_DEADLINE_S, (self._timeout_ms or 0) / 1000)
        try:
            reply = self._receive(wait)
        except (Stopped, TransientError) as e:
            raise TransientError(f"while creating the node, {e}") from None
        if reply[0] == "refused":
            self._end()
            raise ParamError(reply[1], reply[2])
        self._latency = reply[1]

    def _end(self) -> str:
        """Kills and reaps the child; how it ended."""
        global _live
        proc, self._proc = self._proc, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if proc is None:
            return "ended"
        with _live_lock:
            _live -= 1
        if proc.is_alive():
            proc.kill()
        proc.join()
        code = proc.exitcode
        proc.close()
        if code is not None and code < 0:
            return f"killed by signal {-code} ({_SIGNALS.get(-code, 'signal')})"
        return f"exited with status {code}"

    def _receive(self, wait: float | None):
        if not self._conn.poll(wait):
            self._end()
            raise Stopped(f"no reply within {self._timeout_ms} ms: its process was killed and is restarted on the "
                          f"next call")
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            how = self._end()
            raise TransientError(f"its process died: {how}; it is restarted on the next call") from None

    def _call(self, op: str, *args):
        if self._proc is None:
            try:
                self._start()
            except ParamError as e:
                raise RuntimeError(f"restarting its process failed: {e}") from None
            except TransientError as e:
                raise TransientError(f"restarting its process failed: {e}") from None
        try:
            self._conn.send((op, *args))
        except (OSError, ValueError):
            how = self._end()
            raise TransientError(f"its process died: {how}; it is restarted on the next call") from None
        reply = self._receive(None if self._timeout_ms is None else self._timeout_ms / 1000)
        if reply[0] == "ok":
            self._latency = reply[2]
            return reply[1]
        _, kind, message = reply
        raise {"transient": TransientError, "invalid": InvalidInputError}.get(kind, RuntimeError)(message)

    def close(self) -> None:
        self._end()

    def __del__(self):
        try:
            self._end()
        except Exception:  # interpreter shutdown
            pass

    # ---- the node interface ---------------------------------------------------------

    def process(self, data):
        return self._call("process", data)

    def process_port(self, port: int, data):
        return self._call("process_port", port, data)

    def configure(self, inputs: list) -> None:
        self._call("configure", inputs)

    def flush(self):
        """A child that died since its last call held no stream: nothing to flush."""
        return [] if self._proc is None else self._call("flush")

    def reset(self):
        """A dead child is reset by starting afresh on the next call."""
        if self._proc is not None:
            self._call("reset")

    def latency(self) -> int:
        return self._latency


def _serve(conn, cls: type[Node], params: dict) -> None:
    """The child: creates the node, then answers calls until the host closes its end."""
    global _in_child
    _in_child = True
    try:
        node = cls.create(params)
    except ParamError as e:
        conn.send(("refused", e.param, str(e)))
        return
    except Exception as e:
        conn.send(("refused", "", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", node.latency()))
    while True:
        try:
            op, *args = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        try:
            out = getattr(node, op)(*args)
            conn.send(("ok", [] if op in ("reset", "configure") else emitted(out, node), node.latency()))
        except InvalidInputError as e:
            conn.send(("err", "invalid", str(e)))
        except TransientError as e:
            conn.send(("err", "transient", str(e)))
        except Exception as e:
            conn.send(("err", "permanent", str(e)))
