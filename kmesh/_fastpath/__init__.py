"""The data path's hot loops, each written twice: a pure-Python reference and a compiled twin.

The pattern (aiohttp's ``_websocket/reader_py.py`` + ``reader_c`` + ``reader.py``) that every module here
follows, with the SNI parser as its first member:

- ``_<name>_py.py`` is the reference: sans-IO, readable, fully typed, and the specification of behaviour
  (its module docstring lists every rule). It must work everywhere, with no compiler.
- ``_<name>_c.pyx`` is the compiled twin: pointer-level Cython with the same structure, step for step,
  returning the *same* result types (shared from a ``_<name>_types.py`` module both import). Where a module
  is plain Python logic rather than pointer work, the twin may instead be the ``_py`` source compiled with
  an augmenting ``.pxd``. ``_<name>_c.pyi`` types it for mypy.
- ``<name>.py`` is the selector and the only module the rest of kmesh imports: it loads the compiled twin
  unless ``KMESH_NO_EXTENSIONS=1`` is set or the import fails (``ImportError`` only: any other error in a
  built extension is a bug and must surface), and says which one it picked in ``COMPILED``.
- ``setup.py`` builds ``kmesh._fastpath._<name>_c`` for each name in ``FASTPATH_MODULES``, and skips any
  extension that fails to build, so a missing compiler means pure Python, never a failed install.

Rules for both twins: never raise for any content of the bytes given (only for wrong argument types);
never read out of bounds; no I/O, no clocks, and no global state that can change a result (a cache of
immutable values equal to what would be built is the one exception). Tests run every case over both (a
``parser`` fixture parametrized ``py``/``c``), Hypothesis checks that they agree on arbitrary input, and
one test fails when the extension file is present but was not loaded.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["NO_EXTENSIONS"]

#: True when ``KMESH_NO_EXTENSIONS=1``: every selector then uses the pure-Python twin. The same variable,
#: with the same value, makes ``setup.py`` build no extensions at all.
NO_EXTENSIONS: Final[bool] = os.environ.get("KMESH_NO_EXTENSIONS") == "1"
