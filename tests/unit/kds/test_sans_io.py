"""The KDS protocol core is sans-IO (STYLE.md): none of its modules imports asyncio or socket, and none
reads a clock. Transport and sync modules added beside them later are not in this list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kmesh.kds

SANS_IO_MODULES = [
    "__init__.py",
    "_chunking.py",
    "_flow.py",
    "_inbound.py",
    "_state.py",
    "events.py",
    "messages.py",
    "records.py",
    "session.py",
]
FORBIDDEN = {"asyncio", "socket", "selectors", "ssl", "time", "threading"}


def _imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", SANS_IO_MODULES)
def test_protocol_core_does_no_io(module: str) -> None:
    path = Path(kmesh.kds.__file__).parent / module
    imported = _imported_modules(path.read_text())
    assert not imported & FORBIDDEN, f"{module} imports {sorted(imported & FORBIDDEN)}"
