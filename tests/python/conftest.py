import json
import subprocess
from pathlib import Path

import pytest

import remotemedia as rm

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param


def pytest_report_header(config):
    return f"remotemedia native library: {'loaded' if rm.native_available() else 'NOT loaded'}"


@pytest.fixture(scope="session")
def broken(tmp_path_factory):
    """Compiles tests/plugins/broken.c with one -D flag into a library; returns its path."""
    out = tmp_path_factory.mktemp("broken")

    def build(flag: str, name: str | None = None, node_type: str | None = None, schema: dict | None = None) -> Path:
        """``schema``, if given, is the node type's params schema (with ``-DPARAMS_SCHEMA``)."""
        name = name or f"test-{flag.lower()}"
        node_type = node_type or "Echo" + "".join(w.title() for w in flag.split("_"))
        lib = out / f"lib{name}-{node_type}.so"
        extra = [] if schema is None else ["-DPARAMS_SCHEMA=" + json.dumps(json.dumps(schema))]
        if not lib.exists():
            subprocess.run(["cc", "-std=c11", "-fPIC", "-shared", "-fvisibility=hidden", f"-I{ROOT / 'include'}", f"-D{flag}",
                            f'-DNAME="{name}"', f'-DNODE_TYPE="{node_type}"', *extra, str(ROOT / "tests/plugins/broken.c"),
                            "-o", str(lib)], check=True)
        return lib

    return build
