"""The sans-IO packages import neither asyncio nor socket (STYLE.md: protocols are sans-IO).

Walks the source of kmesh/model, kmesh/wire and kmesh/pki with ``ast``, so a forbidden import is caught
wherever it hides (inside a function, under ``if TYPE_CHECKING``, as ``from asyncio import ...``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kmesh

PACKAGE_ROOT = Path(kmesh.__file__).resolve().parent
SANS_IO = ("model", "wire", "pki", "tokens", "proxyconfig")
FORBIDDEN = frozenset({"asyncio", "socket"})


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """Top-level module names imported anywhere in ``tree``, with their line numbers."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def sources() -> list[Path]:
    return sorted(p for pkg in SANS_IO for p in (PACKAGE_ROOT / pkg).rglob("*.py"))


def test_the_packages_exist() -> None:
    for pkg in SANS_IO:
        assert (PACKAGE_ROOT / pkg / "__init__.py").is_file(), pkg


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{name} (line {line})" for name, line in imported_modules(tree) if name in FORBIDDEN]
    assert not bad, f"{path.relative_to(PACKAGE_ROOT)} imports {', '.join(bad)}"


@pytest.mark.parametrize(
    ("code", "caught"),
    [
        ("import asyncio", True),
        ("import socket as s", True),
        ("from asyncio import sleep", True),
        ("def f():\n    import asyncio.tasks", True),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from socket import socket", True),
        ("import ssl\nfrom . import socket_utils", False),
        ("import asyncpg", False),
    ],
)
def test_the_detector_itself(code: str, caught: bool) -> None:
    names = {name for name, _ in imported_modules(ast.parse(code))}
    assert bool(names & FORBIDDEN) is caught
