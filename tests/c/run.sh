#!/usr/bin/env bash
# Builds the C host test against include/remotemedia.h with -Wall -Werror, runs it,
# runs it again under valgrind as a leak and memory-error check, then a third time
# built with AddressSanitizer and UBSan (test and C plugin instrumented; the Rust
# library is exercised under ASan by the fuzz targets, tests/fuzz.sh). The example
# plugins are built first and loaded by the test.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/plugins/build.sh"
export REMOTEMEDIA_TEST_PLUGINS="$root/target/plugins"
# The silero engine's model, from the silero-vad package when installed (make develop).
: "${REMOTEMEDIA_TEST_SILERO_MODEL:=$(PYTHONPATH="$root/py" python3 -c 'from remotemedia.model import silero_package_model as m; print(m() or "")' 2>/dev/null || true)}"
export REMOTEMEDIA_TEST_SILERO_MODEL
# SmartTurn's model, from the pipecat-ai package when installed (make develop).
: "${REMOTEMEDIA_TEST_SMART_TURN_MODEL:=$(PYTHONPATH="$root/py" python3 -c 'from remotemedia.model import smart_turn_package_model as m; print(m() or "")' 2>/dev/null || true)}"
export REMOTEMEDIA_TEST_SMART_TURN_MODEL
# onnxruntime for the Model node: the onnxruntime wheel's library, when installed.
: "${REMOTEMEDIA_TEST_ONNXRUNTIME:=$(PYTHONPATH="$root/py" python3 -c 'from remotemedia.model import onnxruntime_library as o; print(o() or "")' 2>/dev/null || true)}"
export REMOTEMEDIA_TEST_ONNXRUNTIME
profile=${PROFILE:-release}
# Plugins that crash or hang on an empty chunk, for the process isolation test.
export REMOTEMEDIA_TEST_BROKEN_PLUGINS="$root/target/c-tests/broken"
mkdir -p "$REMOTEMEDIA_TEST_BROKEN_PLUGINS"
for kind in crashy:CRASH_ON_EMPTY:Crashy hangy:HANG_ON_EMPTY:Hangy; do
  IFS=: read -r name flag type <<<"$kind"
  cc -std=c11 -fPIC -shared -fvisibility=hidden -I"$root/include" -D"$flag" -DNAME="\"test-$name\"" -DNODE_TYPE="\"$type\"" \
    "$root/tests/plugins/broken.c" -o "$REMOTEMEDIA_TEST_BROKEN_PLUGINS/lib$name.so"
done
libdir="${CARGO_TARGET_DIR:-$root/target}/$profile"
out="$root/target/c-tests"
mkdir -p "$out"
build_test() {  # build_test OUTPUT [CFLAGS...]
  local output=$1
  shift
  cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror "$@" -I"$root/include" \
    "$root/tests/c/test_capi.c" -L"$libdir" -lremotemedia -Wl,-rpath,"$libdir" -lm -o "$output"
}
build_test "$out/test_capi"
"$out/test_capi"
if [ -n "${REMOTEMEDIA_NO_VALGRIND:-}" ]; then
  echo "valgrind run skipped (REMOTEMEDIA_NO_VALGRIND)"
elif command -v valgrind >/dev/null; then
  # As hosts run it: any leak valgrind reports by default (definite or possible), or any
  # memory error, fails; tests/valgrind.supp names what the library keeps on purpose.
  valgrind --quiet --leak-check=full --error-exitcode=1 --suppressions="$root/tests/valgrind.supp" \
    "$out/test_capi" >/dev/null
  echo "c_api under valgrind --leak-check=full with tests/valgrind.supp: no leaks, no memory errors"
else
  echo "valgrind not installed; leak check skipped"
fi

# Sanitizers: any error, leak or undefined behaviour aborts with a report.
if [ -n "${REMOTEMEDIA_NO_SANITIZERS:-}" ]; then
  echo "sanitizer run skipped (REMOTEMEDIA_NO_SANITIZERS)"
  exit 0
fi
sanitize=(-g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
mkdir -p "$out/plugins-asan"
cp "$REMOTEMEDIA_TEST_PLUGINS"/*.so "$out/plugins-asan/"
cc -std=c11 -Wall -Wextra -Werror -O1 -fPIC -shared "${sanitize[@]}" -I"$root/include" \
  "$root/plugins/examples/biquad/biquad.c" -lm -o "$out/plugins-asan/libbiquad.so"
build_test "$out/test_capi_asan" "${sanitize[@]}"
ASAN_OPTIONS=detect_leaks=1 REMOTEMEDIA_TEST_PLUGINS="$out/plugins-asan" REMOTEMEDIA_TEST_CHECK_PLUGINS="$root/target/plugins" \
  "$out/test_capi_asan" >/dev/null
echo "c_api under AddressSanitizer and UBSan: no errors, no leaks"
