"""The control-plane process: its config (``kmesh.cp.config``), its wiring (``ControlPlane`` in
``kmesh.cp.app``) and the ``kmesh-cp`` command (``kmesh.cp.main``). Wiring only: the logic lives in the
packages it starts.

``ControlPlane`` and ``StartupError`` are imported on first use, so that reading a config (as
``kmesh.testing`` does) does not load the API server and the stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kmesh.cp.config import CpConfig, config_to_yaml, load_config

if TYPE_CHECKING:
    from kmesh.cp.app import ControlPlane, StartupError

__all__ = ["ControlPlane", "CpConfig", "StartupError", "config_to_yaml", "load_config"]


def __getattr__(name: str) -> Any:
    if name in ("ControlPlane", "StartupError"):
        from kmesh.cp import app

        return getattr(app, name)
    raise AttributeError(f"module 'kmesh.cp' has no attribute {name!r}")
