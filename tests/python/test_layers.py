"""The layering of docs/ARCHITECTURE.md holds: every import goes down, none in a circle.

The tables in the doc are the declaration; this test reads them and checks the Rust
sources (`crate::x` paths outside test modules) and the Python package (relative
imports) against them, so the picture cannot drift from the code.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def declared(heading: str) -> dict[str, set[str]]:
    """{module: modules it may import} from the table under ``heading``."""
    section = DOC[DOC.index(heading):]
    rows = {}
    for line in section.splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        if name in ("module", "---"):
            continue
        rows[name] = {m.strip() for m in cells[2].split(",") if m.strip()}
    return rows


def rust_imports() -> dict[str, set[str]]:
    src = ROOT / "native" / "src"
    found: dict[str, set[str]] = {}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        module = rel.parts[0].removesuffix(".rs")
        if module == "lib" or path.name == "tests.rs":
            continue
        text = path.read_text()
        text = text.split("#[cfg(test)]\nmod tests")[0]
        for used in re.findall(r"\bcrate::([a-z_]+)\b", text):
            if used != module:
                found.setdefault(module, set()).add(used)
    return found


def python_imports() -> dict[str, set[str]]:
    pkg = ROOT / "py" / "remotemedia"
    found: dict[str, set[str]] = {}
    for path in pkg.rglob("*.py"):
        parts = list(path.relative_to(pkg).with_suffix("").parts)
        module = parts[0]
        here = parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = here[: len(here) - (node.level - 1)]
            if node.module:
                targets = [(base + node.module.split("."))[0]]
            else:
                targets = [(base + [alias.name])[0] for alias in node.names]
            found.setdefault(module, set()).update(t for t in targets if t != module)
    return found


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(n, path):
        state[n] = 1
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m] if m in path else [n, m]
            if m not in state and (found := visit(m, path + [m])):
                return found
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n, [n])):
            return found
    return None


@pytest.mark.parametrize("heading, actual", [("Rust (`native/src`", rust_imports), ("Python (`py/remotemedia`", python_imports)])
def test_imports_follow_the_declared_layers(heading, actual):
    allowed = declared(heading)
    imports = actual()
    assert set(imports) <= set(allowed), f"modules missing from the table: {set(imports) - set(allowed)}"
    wrong = {m: sorted(used - allowed[m]) for m, used in imports.items() if used - allowed[m]}
    assert not wrong, f"imports not allowed by docs/ARCHITECTURE.md: {wrong}"
    assert cycle(allowed) is None, f"the declared layers have a circle: {cycle(allowed)}"
    assert cycle(imports) is None


def test_nothing_below_capi_imports_capi():
    below = {m: used for m, used in rust_imports().items() if m != "capi"}
    assert not [m for m, used in below.items() if "capi" in used]


def test_the_checker_sees_a_circle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert cycle({"a": {"b"}, "b": {"c"}}) is None
