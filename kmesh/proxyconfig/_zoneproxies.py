"""``generate_ingress`` and ``generate_egress``: the SNI tables of a zone's ingresses and egresses.

Both serve every mesh, so they take the snapshots of all meshes of the zone.

Rules:
- Ingress: for every mesh with mTLS (cross-zone traffic is mTLS end to end; the ingress only reads the
  SNI), every subset (``_topology.subsets``) of every healthy local instance's tag set maps its SNI to the
  healthy local instances carrying that subset, weight 1 each. A mesh without mTLS gets no routes and a
  note when it has healthy instances.
- Egress: for every mesh with mTLS and ``routing.zoneEgress``, every subset of every tag set other zones'
  usable ingresses advertise maps its SNI to those ingresses, weighted and prioritized exactly as a
  sidecar's remote endpoints (``_endpoints``), with the policies whose top-level ``targetRef`` is
  ``kind: Mesh`` (an egress serves every client, so it only honours mesh-wide strategies). Every
  MeshExternalService of such a mesh maps its external SNI to its own endpoints, unless the mesh sets
  ``routing.defaultForbidMeshExternalServiceAccess``. Meshes without ``routing.zoneEgress`` are not served.
- The egress terminates mTLS for external services as ``spiffe://<mesh>/zone-egress``, and so is where
  MeshTrafficPermission guards them (there is no sidecar on the far side). For each external service the
  policies whose top-level ``targetRef`` is ``kind: MeshExternalService`` naming it (by ``name``, or by
  ``labels`` matched against the resource's labels) or ``kind: Mesh`` (without ``proxyTypes``) apply, the
  more specific kind winning, and their ``from`` entries are evaluated exactly as for a sidecar's inbound
  (``_permissions``): the same known clients, the same per-tag-set rule, the same fail-closed default.
  A served mesh always has mTLS, so an external service no policy allows is denied to every client, and a
  note says so. This is Kuma's rule: its egress puts the MeshTrafficPermission RBAC of the policies
  selecting an external service on that service's filter chain, and no rule denies (Kuma only seems open
  because a new mesh gets an allow-all policy; a kmesh mesh gets none). Kuma's legacy egress also let
  ``MeshService``/``MeshSubset`` top-level refs select an ExternalService by its tags; a
  MeshExternalService has no tags, so here only its own kind names it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from kmesh.model import Resource
from kmesh.model.types import MeshExternalServiceSpec, TargetRef, ZoneEgressSpec, ZoneIngressSpec
from kmesh.proxyconfig._config import (
    EgressConfig,
    Endpoint,
    ExternalRoute,
    IngressConfig,
    ProxyConfig,
    SniRoute,
    seal,
)
from kmesh.proxyconfig._endpoints import external_endpoints, service_endpoints
from kmesh.proxyconfig._names import EGRESS_SERVICE, external_sni, sni_for, spiffe_id
from kmesh.proxyconfig._permissions import Permissions, known_clients
from kmesh.proxyconfig._resolve import resolve
from kmesh.proxyconfig._sidecar import upstream_tls
from kmesh.proxyconfig._snapshot import MeshSnapshot, zone_of
from kmesh.proxyconfig._targeting import Destination, Subject, selects
from kmesh.proxyconfig._topology import Topology, subsets

__all__ = ["generate_egress", "generate_ingress"]


def _check(resource: Resource, type_name: str, spec_type: type, zone: str) -> None:
    if resource.meta.type != type_name or not isinstance(resource.spec, spec_type):
        raise ValueError(f"expected a {type_name}, got {resource.meta.type} {resource.meta.name!r}")
    owner = zone_of(resource, zone)
    if owner != zone:
        raise ValueError(f"{type_name} {resource.meta.name!r} belongs to zone {owner!r}, not {zone!r}")


def _meshes(snapshots: Sequence[MeshSnapshot]) -> list[MeshSnapshot]:
    names = [s.name for s in snapshots]
    if len(set(names)) != len(names):
        raise ValueError(f"one snapshot per mesh expected, got {sorted(names)}")
    return sorted(snapshots, key=lambda s: s.name)


def generate_ingress(snapshots: Sequence[MeshSnapshot], zone: str, ingress: Resource) -> ProxyConfig:
    """The config of the zone ingress ``ingress`` of ``zone``.

    Raises ValueError when ``ingress`` is not a ZoneIngress of ``zone`` or two snapshots share a mesh.
    """
    _check(ingress, "ZoneIngress", ZoneIngressSpec, zone)
    routes: dict[str, SniRoute] = {}
    notes: list[str] = []
    for snapshot in _meshes(snapshots):
        topo = Topology.of(snapshot, zone)
        healthy = [i for i in topo.instances if i.healthy]
        if healthy and not snapshot.mtls:
            notes.append(
                f"mesh {snapshot.name}: no routes: cross-zone traffic needs mTLS, and the mesh has no "
                "enabled mTLS backend"
            )
            continue
        wanted = {
            sni_for(snapshot.name, instance.service, subset): (instance.service, subset)
            for instance in healthy
            for subset in subsets(instance.tags)
        }
        for sni, (service, subset) in wanted.items():
            identity = spiffe_id(snapshot.name, service)
            endpoints = [
                Endpoint(address=i.address, port=i.port, zone=zone, via="local", spiffe_id=identity)
                for i in topo.local(subset)
            ]
            routes[sni] = SniRoute(mesh=snapshot.name, service=service, tags=subset, endpoints=endpoints)
    config = ProxyConfig(
        proxy_type="ingress",
        name=ingress.meta.name,
        zone=zone,
        mtls_enabled=any(s.mtls for s in snapshots),
        ingress=IngressConfig(routes=dict(sorted(routes.items()))),
        notes=sorted(set(notes)),
    )
    return seal(config)


def _remote_routes(
    snapshot: MeshSnapshot, topo: Topology, subject: Subject, notes: list[str]
) -> dict[str, SniRoute]:
    wanted: dict[str, tuple[str, dict[str, str]]] = {}
    for ingress in topo.ingresses:
        for service, entries in ingress.services.items():
            for tags, _ in entries:
                for subset in subsets(tags):
                    wanted[sni_for(snapshot.name, service, subset)] = (service, subset)
    routes: dict[str, SniRoute] = {}
    for sni, (service, subset) in wanted.items():
        policies = resolve(snapshot, subject, Destination(service))
        built = service_endpoints(
            topo,
            label=f"mesh {snapshot.name}",
            service=service,
            subset=subset,
            sni=sni,
            mtls=True,
            locality=policies.locality,
            via_egress=False,
            include_local=False,
        )
        notes.extend(built.notes)
        if built.endpoints:
            routes[sni] = SniRoute(
                mesh=snapshot.name, service=service, tags=subset, endpoints=built.endpoints
            )
    return routes


def _guards(ref: TargetRef, subject: Subject, external: Resource) -> bool:
    """Whether a MeshTrafficPermission's top-level ``ref`` applies to the MeshExternalService ``external``
    at the egress ``subject``: ``kind: MeshExternalService`` by name or labels, or what ``selects`` lets a
    zone proxy match (``kind: Mesh`` without ``proxyTypes``); other kinds select sidecars' inbounds."""
    if ref.kind == "MeshExternalService":
        if ref.name is not None:
            return ref.name == external.meta.name
        labels = ref.labels or {}
        return bool(labels) and all(external.meta.labels.get(k) == v for k, v in labels.items())
    return selects(ref, subject)


def _external_routes(
    snapshot: MeshSnapshot, subject: Subject, permissions: Permissions, notes: list[str]
) -> dict[str, ExternalRoute]:
    routing = snapshot.spec.routing
    if (
        snapshot.external_services
        and routing is not None
        and routing.default_forbid_mesh_external_service_access
    ):
        notes.append(
            f"mesh {snapshot.name}: no external services: the mesh sets "
            "routing.defaultForbidMeshExternalServiceAccess"
        )
        return {}
    routes: dict[str, ExternalRoute] = {}
    for resource in sorted(snapshot.external_services, key=lambda r: r.meta.name):
        spec = resource.spec
        assert isinstance(spec, MeshExternalServiceSpec)  # checked by MeshSnapshot
        name = resource.meta.name
        label = f"mesh {snapshot.name}: external service {name}"
        decision = permissions.decide(functools.partial(_guards, subject=subject, external=resource), label)
        notes.extend(decision.notes)
        if not decision.allowed and decision.default_action == "Deny":
            notes.append(f"{label}: every client is denied: no MeshTrafficPermission allows any known client")
        routes[external_sni(snapshot.name, name)] = ExternalRoute(
            mesh=snapshot.name,
            name=name,
            identity=spiffe_id(snapshot.name, EGRESS_SERVICE),
            protocol=spec.match.protocol,
            endpoints=external_endpoints(snapshot.name, name, spec, None),
            upstream_tls=upstream_tls(spec.tls),
            allowed_spiffe_ids=decision.allowed,
            denied_spiffe_ids=decision.denied,
            shadow_denied_spiffe_ids=decision.shadow_denied,
            default_action=decision.default_action,
        )
    return routes


def generate_egress(snapshots: Sequence[MeshSnapshot], zone: str, egress: Resource) -> ProxyConfig:
    """The config of the zone egress ``egress`` of ``zone``.

    Raises ValueError when ``egress`` is not a ZoneEgress of ``zone`` or two snapshots share a mesh.
    """
    _check(egress, "ZoneEgress", ZoneEgressSpec, zone)
    subject = Subject.zone_proxy(egress.meta.name)
    routes: dict[str, SniRoute] = {}
    externals: dict[str, ExternalRoute] = {}
    notes: list[str] = []
    served = [s for s in _meshes(snapshots) if s.spec.zone_egress]
    for snapshot in served:
        if not snapshot.mtls:  # refused by Mesh validation; kept so a bad store cannot open plaintext paths
            notes.append(f"mesh {snapshot.name}: not served: routing.zoneEgress needs mTLS")
            continue
        topo = Topology.of(snapshot, zone)
        routes.update(_remote_routes(snapshot, topo, subject, notes))
        permissions = Permissions(snapshot, subject, known_clients(snapshot, zone))
        externals.update(_external_routes(snapshot, subject, permissions, notes))
    config = ProxyConfig(
        proxy_type="egress",
        name=egress.meta.name,
        zone=zone,
        mtls_enabled=any(s.mtls for s in served),
        egress=EgressConfig(
            routes=dict(sorted(routes.items())), external_services=dict(sorted(externals.items()))
        ),
        notes=sorted(set(notes)),
    )
    return seal(config)
