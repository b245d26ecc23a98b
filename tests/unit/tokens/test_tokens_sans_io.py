"""kmesh.tokens is sans-IO: no event loop, no sockets, no clock, no files (time is always passed in).

A clock read would make verification depend on the machine it runs on instead of the ``now`` argument;
a file read would hide where keys come from. Walks the sources with ``ast`` so imports anywhere count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kmesh.tokens

PACKAGE = Path(kmesh.tokens.__file__).resolve().parent
FORBIDDEN = frozenset({"asyncio", "socket", "time", "os", "pathlib", "io", "subprocess"})
CLOCK_CALLS = frozenset({"now", "utcnow", "today", "time", "monotonic"})


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_no_io_and_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in FORBIDDEN:
                bad.append(f"from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in CLOCK_CALLS:
                bad.append(f"call .{node.func.attr}() at line {node.lineno}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            bad.append(f"open() at line {node.lineno}")
    assert not bad, f"{path.name}: {', '.join(bad)}"


def test_the_package_has_modules() -> None:
    assert {p.name for p in sources()} >= {"__init__.py", "_keys.py", "_jwt.py", "_zone.py", "_dataplane.py"}
