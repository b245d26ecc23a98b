"""MeshTrafficPermission: which clients may call the selected proxies (needs mTLS to know who calls).

Rules: entries are ``from[]`` only, each with ``default.action`` ``Allow``, ``Deny`` or
``AllowWithShadowDeny`` (allow, but log as if denied, to trial a stricter policy). The top-level
``targetRef`` selects inbounds (Mesh, MeshSubset, MeshService, MeshServiceSubset, Dataplane) or, with
``kind: MeshExternalService``, an external service, which the zone egress guards (Kuma's MTP for external
services through the egress).
"""

from __future__ import annotations

from typing import ClassVar, Literal, final

import msgspec

from kmesh.model._resource import Spec
from kmesh.model.types.targetref import From, PolicySpec, register_policy

__all__ = ["Action", "MeshTrafficPermissionSpec", "TrafficPermissionConf"]

Action = Literal["Allow", "Deny", "AllowWithShadowDeny"]


@final
class TrafficPermissionConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    action: Action


@final
class MeshTrafficPermissionSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top_kinds: ClassVar[tuple[str, ...]] = (
        "Mesh",
        "MeshSubset",
        "MeshService",
        "MeshServiceSubset",
        "MeshExternalService",
        "Dataplane",
    )
    sections: ClassVar[tuple[str, ...]] = ("from",)

    from_: list[From[TrafficPermissionConf]] = msgspec.field(default_factory=list, name="from")


register_policy(
    "MeshTrafficPermission", MeshTrafficPermissionSpec, path="meshtrafficpermissions", short_names=("mtp",)
)
