"""Builds the Rust cdylib with cargo, then the cffi extension that links it.

Why setuptools + cffi API mode instead of maturin's cffi bindings: API mode compiles
each call into C (about 3x cheaper per call than ABI mode's libffi dispatch), it lets
Python nodes be called back through `extern "Python"`, and its declarations come from
the committed, drift-checked `include/remotemedia.h` that C users compile against,
so there is exactly one header.

The extension uses the stable ABI (`abi3`, CPython >= 3.10), so one wheel serves every
supported CPython. Without cargo on PATH the package installs as the pure-Python
runtime, with a warning; REMOTEMEDIA_REQUIRE_NATIVE=1 makes that an error instead.
The version comes from `py/remotemedia/contract.json`, generated from the Cargo
workspace's version.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
LIB = "libremotemedia.so"
HOST = "remotemedia-node-host"  # the child process of isolated nodes, found beside LIB
VERSION = json.loads((ROOT / "py" / "remotemedia" / "contract.json").read_text())["version"]


class BuildWithCargo(build_ext):
    def run(self):
        profile = os.environ.get("REMOTEMEDIA_PROFILE", "release")
        cmd = ["cargo", "build", "-p", "remotemedia", "--lib", "--bin", HOST]
        if profile == "release":
            cmd.append("--release")
        subprocess.check_call(cmd, cwd=ROOT)
        built = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / profile
        # A wheel ships the library without debug info and without the static symbol
        # table (34 MB -> 4.5 MB; the dynamic symbols of the C ABI stay); an editable
        # install keeps both for debugging in place.
        strip = not (self.inplace or getattr(self, "editable_mode", False)) and shutil.which("strip")
        for ext in self.extensions:
            dest = Path(self.get_ext_fullpath(ext.name)).parent
            dest.mkdir(parents=True, exist_ok=True)
            for name in (LIB, HOST):
                shutil.copy2(built / name, dest / name)
                if strip:
                    subprocess.check_call([strip, "--strip-unneeded", str(dest / name)])
            ext.library_dirs.append(str(dest))
        super().run()

    def build_extensions(self):
        # The interpreter's link command may carry an rpath of the build machine (pyenv
        # builds do); the extension finds its library through its own $ORIGIN rpath only.
        self.compiler.linker_so = [a for a in self.compiler.linker_so if not a.startswith("-Wl,-rpath,")]
        super().build_extensions()


def native_build() -> dict:
    """The setup() arguments of the native build, or none (pure Python) without cargo."""
    if shutil.which("cargo") is None:
        if os.environ.get("REMOTEMEDIA_REQUIRE_NATIVE", "") not in ("", "0"):
            sys.exit("remotemedia: REMOTEMEDIA_REQUIRE_NATIVE is set, but cargo is not on PATH")
        print("remotemedia: WARNING: cargo is not on PATH, so the native library is not built: this installs the "
              "pure-Python runtime only (remotemedia.native_available() is False). Install Rust's cargo and "
              "reinstall for the native runtime; set REMOTEMEDIA_REQUIRE_NATIVE=1 to make this an error.",
              file=sys.stderr)
        return {}
    return {
        "cffi_modules": ["py/remotemedia/_ffi_build.py:ffibuilder"],
        "cmdclass": {"build_ext": BuildWithCargo},
        "options": {"bdist_wheel": {"py_limited_api": "cp310"}},
    }


setup(version=VERSION, **native_build())
