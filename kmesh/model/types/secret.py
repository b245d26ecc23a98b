"""Secret: base64 data inside a mesh (Kuma's flat form ``data: <base64>``)."""

from __future__ import annotations

from typing import final

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._resource import Spec

__all__ = ["SecretSpec"]


@final
class SecretSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data: str = ""


register(
    ResourceDescriptor(
        name="Secret",
        spec_type=SecretSpec,
        scope=Scope.MESH,
        kds=KdsDirection.GLOBAL_TO_ZONES,
        path="secrets",
        singular="secret",
        plural="secrets",
        flat=True,
    )
)
