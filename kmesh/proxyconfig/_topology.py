"""Where a mesh's instances are, as one zone control plane sees them: local instances, other zones' ingresses
with what they advertise, local egresses; and the ``availableServices`` this zone advertises.

Rules:
- Local instances are the inbounds of this zone's dataplanes, with their effective tags (``kuma.io/zone``
  added) and health; ``Ignored`` inbounds are left out, unhealthy ones kept (permissions still know them).
- A remote ingress is usable when it belongs to another zone, that zone is not disabled, and it has an
  advertised address and port (what other zones dial; its plain address is only reachable inside its own
  zone). Unusable ones are kept with the reason, so generation can tell the user why a zone is missing.
- ``available_services``: per (mesh, full effective tag set) of this zone's healthy inbounds, the number of
  such inbounds; groups without a healthy instance are left out; sorted by mesh, then tags.
- ``subsets``: the tag subsets a cluster in another zone may ask an ingress for, given an instance's full
  tag set: every subset that keeps ``kuma.io/service`` when there are at most ``MAX_SUBSET_TAGS`` other
  tags (2**6 = 64 subsets), otherwise the service alone, the service with each single tag, and the full set.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, final

from kmesh.model import LABEL_SERVICE, Resource
from kmesh.model.types.dataplane import DataplaneSpec
from kmesh.model.types.zoneegress import ZoneEgressSpec
from kmesh.model.types.zoneingress import AvailableService, ZoneIngressSpec
from kmesh.proxyconfig._snapshot import MeshSnapshot, effective_tags, inbound_healthy, zone_of
from kmesh.proxyconfig._targeting import tags_match

__all__ = [
    "MAX_SUBSET_TAGS",
    "Instance",
    "LocalEgress",
    "RemoteIngress",
    "Topology",
    "available_services",
    "subsets",
]

MAX_SUBSET_TAGS: Final = 6


@final
@dataclass(frozen=True, slots=True)
class Instance:
    """One inbound of a local dataplane."""

    dataplane: str
    address: str
    port: int
    service: str
    tags: Mapping[str, str]
    healthy: bool


@final
@dataclass(frozen=True, slots=True)
class RemoteIngress:
    """A zone ingress of another zone and the ``(tags, instances)`` it advertises for one mesh."""

    zone: str
    name: str
    address: str
    port: int
    # Per service, the (tags, instances) entries: a cluster looks up its own service only.
    services: Mapping[str, tuple[tuple[Mapping[str, str], int], ...]]

    def instances(self, subset: Mapping[str, str]) -> int:
        """Healthy instances behind this ingress carrying every tag of ``subset`` (which names a service)."""
        entries = self.services.get(subset.get(LABEL_SERVICE, ""), ())
        return sum(count for tags, count in entries if tags_match(subset, tags))


@final
@dataclass(frozen=True, slots=True)
class LocalEgress:
    """A zone egress of this zone, where local proxies reach it."""

    name: str
    address: str
    port: int


@final
@dataclass(frozen=True, slots=True)
class Topology:
    """The instances and gateways of one mesh seen from ``zone``; every tuple is sorted."""

    mesh: str
    zone: str
    instances: tuple[Instance, ...]
    by_service: Mapping[str, tuple[Instance, ...]]
    ingresses: tuple[RemoteIngress, ...]
    unusable: tuple[tuple[RemoteIngress, str], ...]
    egresses: tuple[LocalEgress, ...]

    @classmethod
    def of(cls, snapshot: MeshSnapshot, zone: str) -> Topology:
        mesh = snapshot.name
        instances = [
            Instance(
                dataplane=resource.meta.name,
                address=inbound.address or spec.networking.address,
                port=inbound.port,
                service=inbound.service,
                tags=effective_tags(inbound, zone),
                healthy=inbound_healthy(inbound),
            )
            for resource, spec in snapshot.local_dataplanes(zone)
            for inbound in spec.networking.inbound
            if inbound.state != "Ignored"
        ]
        usable: list[RemoteIngress] = []
        unusable: list[tuple[RemoteIngress, str]] = []
        for resource in sorted(snapshot.zone_ingresses, key=lambda r: (zone_of(r, zone), r.meta.name)):
            spec = resource.spec
            assert isinstance(spec, ZoneIngressSpec)  # checked by MeshSnapshot
            owner = zone_of(resource, zone)
            if owner == zone:
                continue
            net = spec.networking
            entries: dict[str, list[tuple[Mapping[str, str], int]]] = {}
            for available in spec.available_services:
                if available.mesh == mesh and available.instances and LABEL_SERVICE in available.tags:
                    service = available.tags[LABEL_SERVICE]
                    entries.setdefault(service, []).append((dict(available.tags), available.instances))
            ingress = RemoteIngress(
                zone=owner,
                name=resource.meta.name,
                address=net.advertised_address or "",
                port=net.advertised_port or 0,
                services={service: tuple(found) for service, found in sorted(entries.items())},
            )
            if owner in snapshot.disabled_zones:
                unusable.append((ingress, f"zone {owner} is disabled"))
            elif net.advertised_address is None or net.advertised_port is None:
                unusable.append(
                    (ingress, f"ingress {resource.meta.name} of zone {owner} has no advertised address")
                )
            else:
                usable.append(ingress)
        egresses = []
        for resource in sorted(snapshot.zone_egresses, key=lambda r: r.meta.name):
            spec = resource.spec
            assert isinstance(spec, ZoneEgressSpec)
            if zone_of(resource, zone) == zone:
                egresses.append(
                    LocalEgress(resource.meta.name, spec.networking.address, spec.networking.port)
                )
        ordered = sorted(instances, key=lambda i: (i.service, i.address, i.port, i.dataplane))
        by_service: dict[str, list[Instance]] = {}
        for instance in ordered:
            by_service.setdefault(instance.service, []).append(instance)
        return cls(
            mesh=mesh,
            zone=zone,
            instances=tuple(ordered),
            by_service={service: tuple(found) for service, found in by_service.items()},
            ingresses=tuple(usable),
            unusable=tuple(unusable),
            egresses=tuple(egresses),
        )

    def local(self, subset: Mapping[str, str]) -> list[Instance]:
        """Healthy local instances carrying every tag of ``subset`` (which names a service)."""
        candidates = self.by_service.get(subset.get(LABEL_SERVICE, ""), ())
        return [i for i in candidates if i.healthy and tags_match(subset, i.tags)]


def available_services(dataplanes: Iterable[Resource], zone: str) -> list[AvailableService]:
    """The ``availableServices`` of this zone's ingresses (see the module rules); dataplanes of other zones
    in ``dataplanes`` are ignored."""
    counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for resource in dataplanes:
        spec = resource.spec
        if not isinstance(spec, DataplaneSpec) or zone_of(resource, zone) != zone:
            continue
        for inbound in spec.networking.inbound:
            if inbound.state != "Ignored" and inbound_healthy(inbound):
                key = (resource.meta.mesh, tuple(effective_tags(inbound, zone).items()))
                counts[key] = counts.get(key, 0) + 1
    return [
        AvailableService(mesh=mesh, tags=dict(tags), instances=count)
        for (mesh, tags), count in sorted(counts.items())
    ]


def subsets(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """The subsets of ``tags`` an ingress serves (see the module rules), each sorted, in a stable order."""
    service = tags[LABEL_SERVICE]
    others = sorted((k, v) for k, v in tags.items() if k != LABEL_SERVICE)
    if len(others) <= MAX_SUBSET_TAGS:
        chosen = [combo for size in range(len(others) + 1) for combo in itertools.combinations(others, size)]
    else:
        chosen = [(), *(((item,)) for item in others), tuple(others)]
    return [dict(sorted([(LABEL_SERVICE, service), *combo])) for combo in chosen]
