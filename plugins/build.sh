#!/usr/bin/env bash
# Builds the example plugins into target/plugins/ (point REMOTEMEDIA_PLUGIN_PATH there)
# and the test plugins into target/test-plugins/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --release -p remotemedia-noise-gate -p remotemedia-test-panicky
mkdir -p target/plugins target/test-plugins
built="${CARGO_TARGET_DIR:-target}/release"
cp "$built/libremotemedia_noise_gate.so" target/plugins/
cp "$built/libremotemedia_test_panicky.so" target/test-plugins/
# The C example compiles against the plugin header alone, warnings as errors.
cc -std=c11 -Wall -Wextra -Werror -O2 -fPIC -shared -fvisibility=hidden -I include \
  plugins/examples/biquad/biquad.c -lm -o target/plugins/libbiquad.so
