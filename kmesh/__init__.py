"""kmesh: a multi-zone service mesh in Python, with its own data-plane proxy.

``kmesh.Sidecar`` is the proxy embedded in an asyncio application (:mod:`kmesh.proxy`); it is imported on
first use, so the control plane and the CLI do not load the data plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kmesh._version import __version__

if TYPE_CHECKING:
    from kmesh.proxy import Sidecar

__all__ = ["Sidecar", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Sidecar":
        from kmesh.proxy import Sidecar

        return Sidecar
    raise AttributeError(f"module 'kmesh' has no attribute {name!r}")
