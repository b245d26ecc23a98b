"""The DP protocol core and the pure parts beside it are sans-IO (STYLE.md): none of these modules imports
asyncio, socket or ssl, or reads a clock. The adapter (``transport``), the server and the client are not
in the list: they are the I/O edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kmesh.dps

SANS_IO_MODULES = [
    "_state.py",
    "events.py",
    "messages.py",
    "session.py",
    "_admission.py",
    "_certs.py",
    "_keys.py",
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
    path = Path(kmesh.dps.__file__).parent / module
    imported = _imported_modules(path.read_text())
    assert not imported & FORBIDDEN, f"{module} imports {sorted(imported & FORBIDDEN)}"


def test_the_detector_sees_a_nested_import() -> None:
    assert "asyncio" in _imported_modules("def f():\n    from asyncio import sleep\n")
