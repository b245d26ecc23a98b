"""kmeshctl, kmesh's command line (``kmesh.cli.main:main``); ``python -m kmesh.cli`` runs it too."""

from __future__ import annotations

from kmesh.cli.main import main

__all__ = ["main"]
