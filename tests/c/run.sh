#!/usr/bin/env bash
# Builds the C host test against include/remotemedia.h with -Wall -Werror and runs it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
profile=${PROFILE:-release}
libdir="$root/target/$profile"
out="$root/target/c-tests"
mkdir -p "$out"
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root/include" \
  "$root/tests/c/test_capi.c" -L"$libdir" -lremotemedia -Wl,-rpath,"$libdir" -lm -o "$out/test_capi"
"$out/test_capi"
