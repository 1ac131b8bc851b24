#!/usr/bin/env bash
# Runs each cargo-fuzz target (native/fuzz: manifest, session, model, group) for FUZZ_SECONDS
# (default 60) under AddressSanitizer, starting from the committed seeds in
# native/fuzz/seeds/TARGET (the model target's seeds are made here, with onnx).
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
tokens = ["{", "}", "[", "]", ":", ",", "null", "true", "false", "-1", "1e309", "4294967296", "18446744073709551616",
          "$", ".", "$mic", "in0", "in1", "Mix", "inputs", "gains"]
with open(sys.argv[2], "w") as f:
    for t in tokens + sorted(json.dumps(w) for w in words):
        f.write(json.dumps(t) + "\n")
PY

# Seeds of the model target: small ONNX models of every operator the generic engine
# runs, made here with the onnx package (no model file is committed).
mkdir -p "$root/target/fuzz-corpus/model-seeds"
python3 - "$root/target/fuzz-corpus/model-seeds" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
out = sys.argv[1]
def save(name, nodes, init, opset=13):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, name, [x], [y], [numpy_helper.from_array(v, k) for k, v in init.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), f"{out}/{name}.onnx")
r = np.random.default_rng(0)
save("dense", [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
               helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Softmax", ["r"], ["y"])],
     {"w": r.standard_normal((16, 4)).astype(np.float32), "b": np.zeros(4, np.float32)})
save("conv", [helper.make_node("Unsqueeze", ["x", "one"], ["u"]),
              helper.make_node("Conv", ["u", "k"], ["c"], strides=[2], pads=[1, 1]),
              helper.make_node("ReduceMean", ["c"], ["m"], axes=[2], keepdims=0),
              helper.make_node("Reshape", ["m", "shape"], ["s"]), helper.make_node("Transpose", ["s"], ["t"], perm=[1, 0]),
              helper.make_node("Flatten", ["t"], ["f"]), helper.make_node("Sigmoid", ["f"], ["y"])],
     {"one": np.array([1], np.int64), "k": r.standard_normal((2, 1, 3)).astype(np.float32), "shape": np.array([2, 1], np.int64)})
save("gemm", [helper.make_node("Gemm", ["x", "g", "c"], ["gm"], transB=1, alpha=0.5),
              helper.make_node("Concat", ["gm", "gm"], ["cat"], axis=1), helper.make_node("ReduceMax", ["cat"], ["y"], axes=[1])],
     {"g": r.standard_normal((3, 16)).astype(np.float32), "c": np.ones(3, np.float32)})
PY

for target in manifest session model group; do
  corpus="$root/target/fuzz-corpus/$target"
  mkdir -p "$corpus"
  extra=()
  [ "$target" = manifest ] && extra=(-dict="$dict")
  echo "fuzzing $target for ${seconds} s"
  log="$root/target/fuzz-corpus/$target.log"
  status=0
  seeds="seeds/$target"
  [ "$target" = model ] && seeds="$root/target/fuzz-corpus/model-seeds"
  cargo +nightly fuzz run --release "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -E -A40 '^(==[0-9]+==|thread .* panicked|SUMMARY)' "$log" | head -80
    echo "fuzz target $target failed (exit $status); its input is in native/fuzz/artifacts/$target"
    exit 1
  fi
done
echo "fuzzing: no crash in any target"
