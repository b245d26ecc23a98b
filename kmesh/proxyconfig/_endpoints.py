"""The endpoints of one cluster: local instances, other zones' ingresses (or the local egress), their
weights and locality priorities.

Rules (DESIGN.md, "Cross-zone routing"):
- Local: every healthy local instance carrying the cluster's tags, direct mTLS, weight 1, priority 0.
- Remote, only with mTLS (the ingress routes on the SNI of an mTLS ClientHello and never decrypts): each
  usable ingress of another zone advertising instances with the cluster's tags, weight = those instances,
  ``via: ingress``, with the cluster's SNI and the destination service's SPIFFE id. A zone's count is the
  largest any of its ingresses advertises (they count the same instances) and is split evenly over them;
  every weight is then multiplied by the least common multiple of the splits so all stay integers.
- With ``routing.zoneEgress`` the remote zones are reached through the local egresses instead: one
  endpoint per egress, together weighing all included remote instances, at the best remote priority; the
  egress then balances over the zones itself (it cannot know this client's per-zone order).
- Locality: without awareness every endpoint is priority 0, so traffic splits by weight over all zones.
  With it, local endpoints are priority 0 and remote zones follow ``crossZone.failover``: the entries that
  apply to this zone (no ``from``, or ``from.zones`` listing it), in order, each give the zones it adds
  (``Any`` all remaining, ``Only`` the listed, ``AnyExcept`` all remaining but the listed) the next
  priority (1, 2, ...); ``None`` stops; zones no entry adds get no traffic. Without failover entries every
  remote zone is priority 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import final

import msgspec

from kmesh.model.types.external_service import MeshExternalServiceSpec
from kmesh.model.types.load_balancing import Failover
from kmesh.proxyconfig._config import Endpoint
from kmesh.proxyconfig._names import EGRESS_SERVICE, external_sni, spiffe_id
from kmesh.proxyconfig._topology import LocalEgress, RemoteIngress, Topology

__all__ = ["Built", "Locality", "external_endpoints", "service_endpoints", "zone_priorities"]


@final
@dataclass(frozen=True, slots=True)
class Locality:
    """Whether the cluster prefers its own zone, and the failover order of the others."""

    aware: bool = False
    failover: tuple[Failover, ...] = ()


def zone_priorities(locality: Locality, local_zone: str, remote_zones: Iterable[str]) -> dict[str, int]:
    """The priority of each remote zone; a zone missing from the result gets no traffic."""
    remaining = sorted(set(remote_zones) - {local_zone})
    if not locality.aware:
        return dict.fromkeys(remaining, 0)
    if not locality.failover:
        return dict.fromkeys(remaining, 1)
    priorities: dict[str, int] = {}
    level = 1
    for step in locality.failover:
        if step.from_ is not None and local_zone not in step.from_.zones:
            continue
        kind, listed = step.to.type, set(step.to.zones or ())
        if kind == "None":
            break
        left = [z for z in remaining if z not in priorities]
        if kind == "Any":
            added = left
        elif kind == "Only":
            added = [z for z in left if z in listed]
        else:  # AnyExcept
            added = [z for z in left if z not in listed]
        if added:
            priorities.update(dict.fromkeys(added, level))
            level += 1
    return priorities


@final
@dataclass(slots=True)
class Built:
    """A cluster's endpoints, sorted, with the factor its weights were scaled by and notes for people."""

    endpoints: list[Endpoint] = field(default_factory=list)
    weight_scale: int = 1
    notes: list[str] = field(default_factory=list)


_VIA_RANK = {"local": 0, "ingress": 1, "egress": 2, "external": 3}


def _order(endpoint: Endpoint) -> tuple[int, int, str, str, int]:
    """Endpoints are listed by priority, local ones first, then by zone and address."""
    return (endpoint.priority, _VIA_RANK[endpoint.via], endpoint.zone, endpoint.address, endpoint.port)


def _remote_zones(topo: Topology, subset: Mapping[str, str]) -> dict[str, list[tuple[RemoteIngress, int]]]:
    zones: dict[str, list[tuple[RemoteIngress, int]]] = {}
    for ingress in topo.ingresses:
        count = ingress.instances(subset)
        if count:
            zones.setdefault(ingress.zone, []).append((ingress, count))
    return zones


def service_endpoints(
    topo: Topology,
    *,
    label: str,
    service: str,
    subset: Mapping[str, str],
    sni: str,
    mtls: bool,
    locality: Locality,
    via_egress: bool,
    include_local: bool = True,
) -> Built:
    """The endpoints for ``subset`` of ``service`` (see the module rules); ``label`` starts each note
    (``cluster web``); ``include_local`` False leaves local instances out (a zone egress never serves
    its own zone)."""
    built = Built()
    identity = spiffe_id(topo.mesh, service) if mtls else None
    local = [
        Endpoint(address=i.address, port=i.port, zone=topo.zone, via="local", spiffe_id=identity)
        for i in (topo.local(subset) if include_local else ())
    ]
    for ingress, reason in topo.unusable:
        if ingress.instances(subset):
            built.notes.append(f"{label}: zone {ingress.zone} left out: {reason}")
    remote = _remote_zones(topo, subset)
    if remote and not mtls:
        zones = ", ".join(sorted(remote))
        built.notes.append(
            f"{label}: instances in zone(s) {zones} left out: cross-zone endpoints need mTLS, "
            f"and mesh {topo.mesh} has no enabled mTLS backend"
        )
        remote = {}
    priorities = zone_priorities(locality, topo.zone, remote)
    for zone in sorted(set(remote) - set(priorities)):
        built.notes.append(f"{label}: zone {zone} left out by MeshLoadBalancingStrategy crossZone.failover")
    weights = {zone: max(count for _, count in remote[zone]) for zone in priorities}
    if via_egress and weights and not topo.egresses:
        built.notes.append(
            f"{label}: instances in zone(s) {', '.join(sorted(weights))} left out: routing.zoneEgress "
            f"is on but zone {topo.zone} has no zone egress"
        )
        weights = {}
    if via_egress:
        scale, hops = _egress_hops(topo, weights, priorities, sni, identity)
    else:
        scale, hops = _ingress_hops(remote, weights, priorities, sni, identity)
    scaled_local = [_scaled(e, scale) for e in local]
    built.endpoints = sorted(scaled_local + hops, key=_order)
    built.weight_scale = scale
    return built


def _ingress_hops(
    remote: Mapping[str, list[tuple[RemoteIngress, int]]],
    weights: Mapping[str, int],
    priorities: Mapping[str, int],
    sni: str,
    identity: str | None,
) -> tuple[int, list[Endpoint]]:
    """``(scale, endpoints)``: each zone's weight split evenly over its ingresses, every weight multiplied
    by ``scale``, the least common multiple of the ingress counts, so the split stays whole."""
    scale = math.lcm(1, *(len(remote[zone]) for zone in weights))
    hops = [
        Endpoint(
            address=ingress.address,
            port=ingress.port,
            weight=weights[zone] * scale // len(remote[zone]),
            zone=zone,
            priority=priorities[zone],
            via="ingress",
            sni=sni,
            spiffe_id=identity,
        )
        for zone in sorted(weights)
        for ingress, _ in remote[zone]
    ]
    return scale, hops


def _egress_hops(
    topo: Topology, weights: Mapping[str, int], priorities: Mapping[str, int], sni: str, identity: str | None
) -> tuple[int, list[Endpoint]]:
    """``(scale, endpoints)``: one endpoint per local egress. All remote instances split over ``m``
    egresses with ``scale = m`` leaves each egress weighing the remote total, and the local instances
    (scaled by ``m`` too) keep their share."""
    if not weights:
        return 1, []
    total, best = sum(weights.values()), min(priorities[zone] for zone in weights)
    hops = [
        Endpoint(
            address=egress.address,
            port=egress.port,
            weight=total,
            priority=best,
            via="egress",
            sni=sni,
            spiffe_id=identity,
        )
        for egress in topo.egresses
    ]
    return len(topo.egresses), hops


def _scaled(endpoint: Endpoint, scale: int) -> Endpoint:
    return endpoint if scale == 1 else msgspec.structs.replace(endpoint, weight=endpoint.weight * scale)


def external_endpoints(
    mesh: str, name: str, spec: MeshExternalServiceSpec, egresses: Sequence[LocalEgress] | None
) -> list[Endpoint]:
    """Endpoints of the MeshExternalService ``name``: its own hosts, or, given the local ``egresses``, those
    egresses, entered with mTLS, the external SNI and the egress's identity."""
    if egresses is None:
        return [Endpoint(address=e.address, port=e.port, via="external") for e in spec.endpoints]
    sni = external_sni(mesh, name)
    identity = spiffe_id(mesh, EGRESS_SERVICE)
    hops = [
        Endpoint(address=e.address, port=e.port, via="egress", sni=sni, spiffe_id=identity) for e in egresses
    ]
    return sorted(hops, key=_order)
