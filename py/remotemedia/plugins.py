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

#: Seconds an isolated conformance check may take before the plugin counts as hung.
DEFAULT_CHECK_TIMEOUT_S = 60.0
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
    and ``checks``). With ``isolated`` (the default) the check runs in a child process,
    so a plugin that crashes gives a failed report saying so instead of ending this one,
    and one that hangs is stopped after ``timeout`` seconds with a failed report."""
    if not isolated:
        _runtime()
        return native.check_plugin(path)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise InvalidInputError(f"timeout must be seconds from 0 to {MAX_TIMEOUT_S}, got {timeout!r}")
    cmd = [sys.executable, "-m", "remotemedia", "plugins", "check", "--in-process", "--json", os.fspath(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"file": os.fspath(path), "passed": False, "hung": timeout,
                "checks": [{"node_type": None, "check": "no hang", "ok": False,
                            "detail": f"the check did not finish within {timeout:g} s (a call that never returns?); "
                                      "the check process was killed"}]}
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return {"file": os.fspath(path), "passed": False, "crashed": name,
                "checks": [{"node_type": None, "check": "no crash", "ok": False,
                            "detail": f"the check process died of {name}: {done.stderr.strip()[-500:]}"}]}
    if done.stdout.strip():
        report = json.loads(done.stdout)
        if "error" in report:  # the child could not load the plugin
            raise PluginError(report["error"], file=report["file"])
        return report
    raise PluginError(done.stderr.strip().removeprefix("remotemedia: error: "), file=os.fspath(path))
