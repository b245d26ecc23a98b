"""ZoneIngress (a zone's entry point for traffic from other zones) and ZoneIngressInsight.

Rules:
- ``networking.address``/``port`` are where local proxies reach the ingress; ``advertisedAddress`` and
  ``advertisedPort`` are what other zones dial (a load balancer or NAT address), and go together.
- ``zone`` is filled in by the zone control plane that owns the ingress.
- ``availableServices`` is kept by the zone CP: per mesh and tag set, the number of healthy instances behind
  this ingress, which other zones use as the ingress's load-balancing weight.
ZoneIngresses live beside meshes (one ingress serves every mesh) and flow zone-to-global; the global then
sends each zone the ingresses of the other zones.
"""

from __future__ import annotations

from typing import final

import msgspec

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import Address, NonNegInt, Port, Problems, RefName, Tags
from kmesh.model._resource import LABEL_SERVICE, Spec
from kmesh.model.types.common import EnvoyAdmin
from kmesh.model.types.insight import DiscoverySubscription, connected

__all__ = ["AvailableService", "ZoneIngressInsightSpec", "ZoneIngressNetworking", "ZoneIngressSpec"]


@final
class ZoneIngressNetworking(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    address: Address
    advertised_address: Address | None = None
    port: Port
    advertised_port: Port | None = None
    admin: EnvoyAdmin | None = None

    def problems(self) -> Problems:
        if (self.advertised_address is None) != (self.advertised_port is None):
            missing = "advertisedPort" if self.advertised_port is None else "advertisedAddress"
            yield missing, "advertisedAddress and advertisedPort must be set together"
        if self.admin is not None and self.admin.port == self.port:
            yield "admin.port", "must differ from port"

    @property
    def public_address(self) -> tuple[str, int]:
        """Where other zones connect: the advertised address and port when set, else the local ones."""
        if self.advertised_address is not None and self.advertised_port is not None:
            return self.advertised_address, self.advertised_port
        return self.address, self.port


@final
class AvailableService(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tags: Tags
    instances: NonNegInt = 0
    mesh: RefName
    external_service: bool = False

    def problems(self) -> Problems:
        if LABEL_SERVICE not in self.tags:
            yield f'tags["{LABEL_SERVICE}"]', "required"


@final
class ZoneIngressSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zone: str = ""
    networking: ZoneIngressNetworking
    available_services: list[AvailableService] = msgspec.field(default_factory=list)


@final
class ZoneIngressInsightSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    subscriptions: list[DiscoverySubscription] = msgspec.field(default_factory=list)

    @property
    def connected(self) -> bool:
        return connected(self.subscriptions)


register(
    ResourceDescriptor(
        name="ZoneIngress",
        spec_type=ZoneIngressSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.ZONE_TO_GLOBAL,
        path="zoneingresses",
        singular="zone-ingress",
        plural="zone-ingresses",
        short_names=("zoneingress", "zoneingresses"),
        flat=True,
        kds_to_other_zones=True,
    )
)
register(
    ResourceDescriptor(
        name="ZoneIngressInsight",
        spec_type=ZoneIngressInsightSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.ZONE_TO_GLOBAL,
        path="zone-ingress-insights",
        singular="zone-ingress-insight",
        plural="zone-ingress-insights",
        read_only=True,
        flat=True,
    )
)
