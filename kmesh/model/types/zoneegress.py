"""ZoneEgress (a zone's exit for cross-zone and external traffic, used with ``routing.zoneEgress``) and
ZoneEgressInsight.

Rules: ``networking.address``/``port`` are where local proxies reach the egress; ``zone`` is filled in by
the owning zone control plane. Egresses live beside meshes and flow zone-to-global, for observability.
"""

from __future__ import annotations

from typing import final

import msgspec

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import Address, Port, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.common import EnvoyAdmin
from kmesh.model.types.insight import DiscoverySubscription, connected

__all__ = ["ZoneEgressInsightSpec", "ZoneEgressNetworking", "ZoneEgressSpec"]


@final
class ZoneEgressNetworking(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    address: Address
    port: Port
    admin: EnvoyAdmin | None = None

    def problems(self) -> Problems:
        if self.admin is not None and self.admin.port == self.port:
            yield "admin.port", "must differ from port"


@final
class ZoneEgressSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zone: str = ""
    networking: ZoneEgressNetworking


@final
class ZoneEgressInsightSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    subscriptions: list[DiscoverySubscription] = msgspec.field(default_factory=list)

    @property
    def connected(self) -> bool:
        return connected(self.subscriptions)


register(
    ResourceDescriptor(
        name="ZoneEgress",
        spec_type=ZoneEgressSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.ZONE_TO_GLOBAL,
        path="zoneegresses",
        singular="zoneegress",
        plural="zoneegresses",
        short_names=("zone-egress", "zone-egresses"),
        flat=True,
    )
)
register(
    ResourceDescriptor(
        name="ZoneEgressInsight",
        spec_type=ZoneEgressInsightSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.ZONE_TO_GLOBAL,
        path="zone-egress-insights",
        singular="zone-egress-insight",
        plural="zone-egress-insights",
        read_only=True,
        flat=True,
    )
)
