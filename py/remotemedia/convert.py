"""The one sample-scaling convention, shared by every conversion in the package.

Full scale is ±1.0 for floats and ``-2**(N-1) .. 2**(N-1)-1`` for N-bit integers:

* int → float: ``f = i / 2**(N-1)`` (exact; -1.0 ≤ f < 1.0)
* float → int: ``i = clip(rint(f * 2**(N-1)), -2**(N-1), 2**(N-1)-1)``, rounding half to
  even; NaN becomes 0, ±inf clips to the extremes.
* int → int: through the same scale, i.e. a shift for widening and rounded, clipped
  scaling for narrowing.

This matches the native runtime's `SampleFormat` documentation (native/src/data.rs).
"""

from __future__ import annotations

import numpy as np

_SCALE = {np.dtype(np.int16): 2.0 ** 15, np.dtype(np.int32): 2.0 ** 31}


def convert(samples: np.ndarray, dtype) -> np.ndarray:
    """``samples`` in ``dtype`` following the convention above; no copy if already there."""
    src, dst = samples.dtype, np.dtype(dtype)
    if src == dst:
        return samples
    x = samples.astype(np.float64) / _SCALE[src] if src in _SCALE else samples.astype(np.float64)
    if dst.kind == "f":
        return x.astype(dst)
    info = np.iinfo(dst)
    scaled = np.nan_to_num(x * _SCALE[dst], nan=0.0, posinf=info.max, neginf=info.min)
    return np.clip(np.rint(scaled), info.min, info.max).astype(dst)
