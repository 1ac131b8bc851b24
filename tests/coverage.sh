#!/usr/bin/env bash
# Line coverage of the Rust code (cargo llvm-cov, over the Rust, C and Python test
# paths: every test runs against one instrumented build) and of the Python package
# (pytest-cov). Prints both summaries, writes HTML reports to target/coverage/, and
# fails if either is under COVERAGE_MIN percent (80 by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
min=${COVERAGE_MIN:-80}
python=${PYTHON:-python3}
# rustup cannot fetch llvm-tools here; Debian's LLVM reads rustc's profiles.
for v in 19 18 17; do
  if [ -z "${LLVM_COV:-}" ] && command -v "llvm-cov-$v" >/dev/null; then
    export LLVM_COV="llvm-cov-$v" LLVM_PROFDATA="llvm-profdata-$v"
  fi
done
eval "$(cargo llvm-cov show-env --sh)"
# valgrind and the sanitizers have run on the ordinary build (make test); the
# profiling runtime of an instrumented build leaks by design (LeakSanitizer sees it).
export REMOTEMEDIA_NO_VALGRIND=1 REMOTEMEDIA_NO_SANITIZERS=1
cargo llvm-cov clean --workspace
cargo test --workspace --release --quiet
# The Python package and the C test load the instrumented library and plugins.
"$python" -m pip install --quiet --disable-pip-version-check -e .
tests/c/run.sh >/dev/null
mkdir -p target/coverage
"$python" -m pytest -q -p no:cacheprovider --cov=remotemedia --cov-report=term:skip-covered \
  --cov-report=html:target/coverage/python --cov-fail-under="$min"
# An isolated node's process killed while it writes its profile at exit (past its exit
# grace, on a loaded machine) leaves a partial file, which would fail the whole merge;
# it holds no usable data, so it goes.
for f in target/*.profraw; do
  [ -e "$f" ] || continue
  "${LLVM_PROFDATA:-llvm-profdata}" show "$f" >/dev/null 2>&1 || { echo "dropping partial profile $f"; rm -f "$f"; }
done
cargo llvm-cov report --release --html --output-dir target/coverage/rust >/dev/null
echo "Rust line coverage (native, plugin kit, example plugins; Rust, C and Python tests):"
cargo llvm-cov report --release --summary-only --fail-under-lines "$min" | tail -n 1
echo "HTML reports: target/coverage/rust/html/index.html, target/coverage/python/index.html"
