"""The fast-path pattern itself: the selector picks the compiled twin when it is built, and only then.

The classic failure this guards against is silent: an extension that is built but not loaded (a broken
import caught somewhere, a stale name) leaves everything working, only slower.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kmesh._fastpath
from kmesh._fastpath import NO_EXTENSIONS, _sni_py, _sni_types, sni

PACKAGE_DIR = Path(kmesh._fastpath.__file__).parent


def built_extension(name: str) -> list[Path]:
    """The compiled module files of ``kmesh._fastpath.<name>`` present in the package directory."""
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return [path for suffix in suffixes if (path := PACKAGE_DIR / f"{name}{suffix}").exists()]


def test_built_extension_is_loaded() -> None:
    """Fails when _sni_c is built in the package directory but the selector fell back to pure Python."""
    built = built_extension("_sni_c")
    if NO_EXTENSIONS:
        assert sni.COMPILED is False
        assert sni.parse_client_hello is _sni_py.parse_client_hello
    else:
        assert sni.COMPILED is bool(built), f"built: {built}, COMPILED: {sni.COMPILED}"
        assert (sni.parse_client_hello is _sni_py.parse_client_hello) is not sni.COMPILED


SELECTOR_PROBE = (
    "from kmesh._fastpath import sni, NO_EXTENSIONS; "
    "print(NO_EXTENSIONS, sni.COMPILED, sni.parse_client_hello.__module__)"
)


@pytest.mark.parametrize(
    ("value", "forced"), [(None, False), ("1", True), ("0", False), ("", False), ("yes", False)]
)
def test_environment_variable(value: str | None, forced: bool) -> None:
    # A fresh interpreter, since the choice is made once, at import.
    env = {k: v for k, v in os.environ.items() if k != "KMESH_NO_EXTENSIONS"}
    if value is not None:
        env["KMESH_NO_EXTENSIONS"] = value
    out = subprocess.run(
        [sys.executable, "-c", SELECTOR_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    compiled = not forced and bool(built_extension("_sni_c"))
    module = "kmesh._fastpath._sni_c" if compiled else "kmesh._fastpath._sni_py"
    assert out == [str(forced), str(compiled), module]


def test_selector_exports() -> None:
    assert sorted(sni.__all__) == ["COMPILED", "SniResult", "SniStatus", "parse_client_hello"]
    assert kmesh._fastpath.__all__ == ["NO_EXTENSIONS"]
    assert sni.SniResult is _sni_types.SniResult


def test_every_compiled_module_has_its_twins() -> None:
    """Each ``_<name>_c.pyx`` comes with its reference, its selector and its type stub."""
    sources = sorted(PACKAGE_DIR.glob("_*_c.pyx"))
    assert sources, "the SNI parser at least"
    for source in sources:
        name = source.name.removeprefix("_").removesuffix("_c.pyx")
        for twin in (f"_{name}_py.py", f"{name}.py", f"_{name}_c.pyi"):
            assert (PACKAGE_DIR / twin).is_file(), f"{source.name} has no {twin}"
