"""Native plugins from Python: load one by path, list what discovery found, check one.

Plugins are shared libraries offering node types through ``include/remotemedia_plugin.h``
(see docs/PLUGINS.md). The process-wide native runtime discovers them when it starts;
their node types are then used in manifests and ``Pipeline`` like built-in nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from . import native
from .errors import InvalidInputError, PluginError

#: Seconds one node call may take in the conformance check before it counts as hung.
DEFAULT_CHECK_TIMEOUT_S = 10.0
#: Longest the whole check may take in its child process, over the per-call limit; only
#: a plugin that hangs while loading gets near it.
LOAD_TIMEOUT_S = 600.0
MAX_TIMEOUT_S = 3600.0


def _runtime() -> native.NativeRuntime:
    if not native.available():
        raise PluginError(f"plugins need the native library ({native.IMPORT_ERROR or 'disabled by REMOTEMEDIA_DISABLE_NATIVE'})")
    return native.NativeRuntime.get()


def load_plugin(path: str | os.PathLike) -> dict:
    """Loads the plugin library at ``path`` into the process-wide runtime; returns its
    description (name, version, license, file, abi, node_types). Raises PluginError with
    ``file`` and the reason when it cannot be loaded."""
    return _runtime().load_plugin(path)


def list_plugins() -> dict:
    """``{"plugins": [...], "rejected": [{"file", "reason"}], "search_path": [...]}``."""
    return _runtime().plugins()


def check_plugin(path: str | os.PathLike, *, isolated: bool = True, timeout: float = DEFAULT_CHECK_TIMEOUT_S) -> dict:
    """Runs the plugin through the conformance check and returns the report (``passed``
    and ``checks``; ``crashed`` or ``hung`` with ``at``, the node type and check, when
    that happened). Every instance runs in a child process, each call limited to
    ``timeout`` seconds, so a crash or a hang fails the check it happened in and the
    others still run. With ``isolated`` (the default) the plugin is also loaded in a
    child process, so one that crashes or hangs while loading gives a failed report."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise InvalidInputError(f"timeout must be seconds from 0 to {MAX_TIMEOUT_S}, got {timeout!r}")
    if not isolated:
        _runtime()
        return native.check_plugin(path, max(1, round(timeout * 1000)))
    cmd = [sys.executable, "-m", "remotemedia", "plugins", "check", "--in-process", "--json", "--timeout", repr(timeout),
           os.fspath(path)]
    at = {"node_type": None, "check": "load the plugin"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=LOAD_TIMEOUT_S + timeout)
    except subprocess.TimeoutExpired:
        return {"file": os.fspath(path), "passed": False, "hung": LOAD_TIMEOUT_S + timeout, "at": at,
                "checks": [{**at, "ok": False, "hung": True,
                            "detail": f"the check did not finish within {LOAD_TIMEOUT_S + timeout:g} s; "
                                      "the check process was killed"}]}
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return {"file": os.fspath(path), "passed": False, "crashed": name, "at": at,
                "checks": [{**at, "ok": False, "crashed": True,
                            "detail": f"the check process died of {name}: {done.stderr.strip()[-500:]}"}]}
    if done.stdout.strip():
        report = json.loads(done.stdout)
        if "error" in report:  # the child could not load the plugin
            raise PluginError(report["error"], file=report["file"])
        return report
    raise PluginError(done.stderr.strip().removeprefix("remotemedia: error: "), file=os.fspath(path))
