"""Builds kmesh's optional Cython extensions.

Every extension in ``kmesh/_fastpath`` has a pure-Python twin, so the build never fails for want of a
compiler: when Cython or a C compiler is missing, or ``KMESH_NO_EXTENSIONS=1`` is set, the package is
installed as pure Python and ``kmesh._fastpath.COMPILED`` says so at run time.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

FASTPATH_MODULES = ["sni"]


def _extensions() -> list[Any]:
    if os.environ.get("KMESH_NO_EXTENSIONS") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("kmesh: Cython not found, building pure Python", file=sys.stderr)
        return []
    from setuptools import Extension

    exts = [
        Extension(f"kmesh._fastpath._{name}_c", [f"kmesh/_fastpath/_{name}_c.pyx"])
        for name in FASTPATH_MODULES
        if os.path.exists(f"kmesh/_fastpath/_{name}_c.pyx")
    ]
    return list(cythonize(exts, compiler_directives={"language_level": "3"}, quiet=True))


class OptionalBuildExt(build_ext):
    """Skips an extension that fails to compile instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure means "use the twin"
            print(f"kmesh: extensions not built ({exc}); using pure Python", file=sys.stderr)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"kmesh: {ext.name} not built ({exc}); using pure Python", file=sys.stderr)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
