"""kmesh: a multi-zone service mesh in Python, with its own data-plane proxy."""

from __future__ import annotations

from kmesh._version import __version__

__all__ = ["__version__"]
