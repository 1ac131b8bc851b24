#!/usr/bin/env bash
# Builds the C host test against include/remotemedia.h with -Wall -Werror, runs it,
# then runs it again under valgrind as a leak and memory-error check. The example
# plugins are built first and loaded by the test.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/plugins/build.sh"
export REMOTEMEDIA_TEST_PLUGINS="$root/target/plugins"
profile=${PROFILE:-release}
libdir="${CARGO_TARGET_DIR:-$root/target}/$profile"
out="$root/target/c-tests"
mkdir -p "$out"
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root/include" \
  "$root/tests/c/test_capi.c" -L"$libdir" -lremotemedia -Wl,-rpath,"$libdir" -lm -o "$out/test_capi"
"$out/test_capi"
if [ -n "${REMOTEMEDIA_NO_VALGRIND:-}" ]; then
  echo "valgrind run skipped (REMOTEMEDIA_NO_VALGRIND)"
elif command -v valgrind >/dev/null; then
  # Definite or indirect leaks, or any memory error, fail the test.
  valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --error-exitcode=3 "$out/test_capi" >/dev/null
  echo "c_api under valgrind: no leaks, no memory errors"
else
  echo "valgrind not installed; leak check skipped"
fi
