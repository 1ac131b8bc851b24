"""Instructions per `Pipeline.run` of the pure-Python runtime (a one-node Gain pipeline
on 480 float32 samples), counted by valgrind's callgrind: a measure that does not move
with a shared machine's speed, unlike time.

The count is the difference between runs of 6000 and 1000 calls, divided by 5000, so
start-up (imports, building the pipeline) cancels out; objects made before the loop are
frozen out of garbage collection, so a tree that imports more does not pay for it in
every collection. With ``--rev REV`` it also counts
the Python package as it was at git revision REV (checked out into a temporary
worktree), e.g. the first release's `0705204`, before metrics and retries:

    python benchmarks/count_instructions.py [--rev 0705204]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CALLS = """
import gc
import sys
import numpy as np
import remotemedia as rm
x = np.sin(np.arange(480, dtype=np.float32) * 0.01).astype(np.float32)
a = rm.Audio(x, 16000)
p = rm.Pipeline(runtime="python").add_node("n", "Gain", gain_db=-6.0)
{call}
gc.freeze()  # what was made before the loop is not scanned again: collections cost the same in both trees
for _ in range(int(sys.argv[1])):
    {call}
"""

CONTENDERS = {"python-runtime Gain run": "p.run(a)", "numpy x * gain alone": "x * np.float32(0.5)"}


def instructions(py_dir: Path, call: str, calls: int) -> int:
    """Instructions of a process that makes ``calls`` calls (callgrind's total)."""
    script = CALLS.format(call=call)
    env = {**os.environ, "PYTHONPATH": str(py_dir), "PYTHONHASHSEED": "0", "REMOTEMEDIA_DISABLE_NATIVE": "1"}
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", script,
                          str(calls)], env=env, capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def per_call(py_dir: Path, call: str) -> float:
    return (instructions(py_dir, call, 6000) - instructions(py_dir, call, 1000)) / 5000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", help="also count the package at this git revision")
    args = parser.parse_args()
    trees = {"this tree": ROOT / "py"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.rev:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", tmp, args.rev], check=True)
            trees[args.rev] = Path(tmp) / "py"
        try:
            print("| tree | contender | instructions per call |\n|---|---|---|")
            for tree, py_dir in trees.items():
                for name, call in CONTENDERS.items():
                    print(f"| {tree} | {name} | {per_call(py_dir, call):,.0f} |", flush=True)
        finally:
            if args.rev:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], check=True)


if __name__ == "__main__":
    main()
