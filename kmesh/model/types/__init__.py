"""Spec structs of every resource type, one module per family; importing this registers them all."""

from __future__ import annotations

from kmesh.model.types import mesh, secret

__all__ = ["mesh", "secret"]
