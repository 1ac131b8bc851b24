"""cffi (API mode) build script: declarations come from include/remotemedia.h."""

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "remotemedia.h"

# Callbacks into Python for host nodes (see RmNodeVTable).
PYTHON_CALLBACKS = """
extern "Python" int32_t _rm_py_create(void *, const char *, size_t, void **, RmNodeContext *);
extern "Python" int32_t _rm_py_process(void *, const RmDataView *, RmNodeContext *);
extern "Python" int32_t _rm_py_flush(void *, RmNodeContext *);
extern "Python" int32_t _rm_py_reset(void *, RmNodeContext *);
extern "Python" void _rm_py_destroy(void *);
extern "Python" void _rm_py_release(void *);
extern "Python" void _rm_py_log(void *, uint32_t, const char *, const char *);
"""


def cdef_source(header: str) -> str:
    """The header without preprocessor lines and C++ guards, as cffi's cdef wants it."""
    header = re.sub(r"#ifdef __cplusplus.*?#endif[^\n]*\n", "", header, flags=re.S)
    lines = []
    for line in header.splitlines():
        define = re.match(r"#define (RM_\w+) (.+)$", line)
        if define:
            value = define.group(2)
            lines.append(f"#define {define.group(1)} {value if value.isdigit() else '...'}")
        elif not line.startswith("#"):
            lines.append(line)
    return "\n".join(lines)


ffibuilder = FFI()
ffibuilder.cdef(cdef_source(HEADER.read_text()) + PYTHON_CALLBACKS)
ffibuilder.set_source(
    "remotemedia._ffi",
    '#include "remotemedia.h"',
    include_dirs=[str(HEADER.parent)],
    libraries=["remotemedia"],
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
)
