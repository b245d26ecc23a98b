"""Mesh: the unit of isolation, with its mTLS backends and routing switches (Kuma's legacy flat form)."""

from __future__ import annotations

from typing import final

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._resource import Spec

__all__ = ["MeshSpec"]


@final
class MeshSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Minimal placeholder; the full shape (mtls, routing, networking) is filled in by the model work."""


register(
    ResourceDescriptor(
        name="Mesh",
        spec_type=MeshSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.GLOBAL_TO_ZONES,
        path="meshes",
        singular="mesh",
        plural="meshes",
        flat=True,
    )
)
