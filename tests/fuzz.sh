#!/usr/bin/env bash
# Runs each cargo-fuzz target (native/fuzz) for FUZZ_SECONDS (default 60) under
# AddressSanitizer, starting from the committed seeds in native/fuzz/seeds/TARGET.
# New inputs go to target/fuzz-corpus/TARGET (not committed); a crash, abort, leak or
# hang (over 10 s) fails the run and leaves its input in native/fuzz/artifacts/TARGET.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
cd "$root/native/fuzz"

# The manifest dictionary: JSON tokens plus every node type, param, enum value and
# field name the contract lists, so the fuzzer reaches validation past the parser.
dict="$root/target/fuzz-corpus/manifest.dict"
mkdir -p "$root/target/fuzz-corpus"
python3 - "$root/py/remotemedia/contract.json" "$dict" <<'PY'
import json, sys
contract = json.load(open(sys.argv[1]))
words = set()
def walk(value):
    if isinstance(value, dict):
        for k, v in value.items():
            words.add(k)
            walk(v)
    elif isinstance(value, list):
        for v in value:
            walk(v)
    elif isinstance(value, str) and len(value) < 40:
        words.add(value)
walk(contract["nodes"])
walk(contract["manifest"])
tokens = ["{", "}", "[", "]", ":", ",", "null", "true", "false", "-1", "1e309", "4294967296", "18446744073709551616"]
with open(sys.argv[2], "w") as f:
    for t in tokens + sorted(json.dumps(w) for w in words):
        f.write(json.dumps(t) + "\n")
PY

for target in manifest session; do
  corpus="$root/target/fuzz-corpus/$target"
  mkdir -p "$corpus"
  extra=()
  [ "$target" = manifest ] && extra=(-dict="$dict")
  echo "fuzzing $target for ${seconds} s"
  log="$root/target/fuzz-corpus/$target.log"
  status=0
  cargo +nightly fuzz run --release "$target" "$corpus" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -E -A40 '^(==[0-9]+==|thread .* panicked|SUMMARY)' "$log" | head -80
    echo "fuzz target $target failed (exit $status); its input is in native/fuzz/artifacts/$target"
    exit 1
  fi
done
echo "fuzzing: no crash in any target"
