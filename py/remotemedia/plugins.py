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
from .errors import PluginError


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


def check_plugin(path: str | os.PathLike, *, isolated: bool = True) -> dict:
    """Runs the plugin through the conformance check and returns the report (``passed``
    and ``checks``). With ``isolated`` (the default) the check runs in a child process,
    so a plugin that crashes gives a failed report saying so instead of ending this one."""
    if not isolated:
        _runtime()
        return native.check_plugin(path)
    cmd = [sys.executable, "-m", "remotemedia", "plugins", "check", "--in-process", "--json", os.fspath(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return {"file": os.fspath(path), "passed": False, "crashed": name,
                "checks": [{"node_type": None, "check": "no crash", "ok": False,
                            "detail": f"the check process died of {name}: {done.stderr.strip()[-500:]}"}]}
    if done.stdout.strip():
        return json.loads(done.stdout)
    raise PluginError(done.stderr.strip().removeprefix("remotemedia: error: "), file=os.fspath(path))
