"""cffi (API mode) build script: declarations come from include/remotemedia_plugin.h (the
node ABI) and include/remotemedia.h (the runtime API), which includes it."""

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]
HEADERS = [ROOT / "include" / "remotemedia_plugin.h", ROOT / "include" / "remotemedia.h"]

# Callbacks into Python for host nodes (see RmNodeVTable).
PYTHON_CALLBACKS = """
extern "Python" int32_t _rm_py_create(void *, const char *, size_t, void **, RmNodeContext *);
extern "Python" int32_t _rm_py_process(void *, const RmDataView *, RmNodeContext *);
extern "Python" int32_t _rm_py_process_port(void *, uint32_t, const RmDataView *, RmNodeContext *);
extern "Python" int32_t _rm_py_configure(void *, const char *, size_t, RmNodeContext *);
extern "Python" int64_t _rm_py_latency(void *, const char *, size_t, const char *, size_t);
extern "Python" const void *_rm_py_get_extension(const char *, const char *);
extern "Python" int32_t _rm_py_flush(void *, RmNodeContext *);
extern "Python" int32_t _rm_py_reset(void *, RmNodeContext *);
extern "Python" void _rm_py_destroy(void *);
extern "Python" void _rm_py_release(void *);
extern "Python" void _rm_py_log(void *, uint32_t, const char *, const char *);
"""


def cdef_source(header: str) -> str:
    """The header without preprocessor lines and C++ guards, as cffi's cdef wants it.
    Integer macros are kept (their value filled in by the compiler); others are dropped."""
    header = re.sub(r"#ifdef __cplusplus.*?#endif[^\n]*\n", "", header, flags=re.S)
    lines = []
    for line in header.splitlines():
        define = re.match(r"#define (RM_\w+) (.+)$", line)
        if define:
            value = define.group(2)
            if re.fullmatch(r"[\d\s()<>+|-]+", value):
                lines.append(f"#define {define.group(1)} {value if value.isdigit() else '...'}")
        elif not line.startswith("#"):
            lines.append(line)
    return "\n".join(lines)


ffibuilder = FFI()
ffibuilder.cdef("\n".join(cdef_source(h.read_text()) for h in HEADERS) + PYTHON_CALLBACKS)
ffibuilder.set_source(
    "remotemedia._ffi",
    '#include "remotemedia.h"',
    include_dirs=[str(HEADERS[0].parent)],
    libraries=["remotemedia"],
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
)
