"""``generate_sidecar``: the ProxyConfig of one dataplane (a sidecar or a delegated gateway).

Rules:
- Inbounds: one per declared inbound (``Ignored`` ones too: the application still listens), address
  defaulting to the dataplane's, service address to 127.0.0.1, service port to the inbound port, protocol
  from ``kuma.io/protocol`` (tcp), tags the effective tags; permissions from ``_permissions``.
- Outbounds: one per declared outbound (address 127.0.0.1 by default), tags ``kuma.io/service`` plus the
  declared subset. Outbounds to the same subset share one cluster. An outbound whose service is the name of
  a MeshExternalService goes to that external service (the name wins over a mesh service of the same name).
- Clusters: endpoints from ``_endpoints``, policies from ``_resolve``. An external service is reached
  directly (TLS origination per its ``tls``) or, with ``routing.zoneEgress``, through the local egresses;
  with ``routing.defaultForbidMeshExternalServiceAccess`` it gets no endpoints and a note.
- Without mTLS the config has no remote endpoint and a note says why; ``identity`` is the SPIFFE id of the
  first inbound's service (the gateway's for a gateway), "" without mTLS.
- Notes are de-duplicated and sorted; the result is sealed (``version`` is its digest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import final

from kmesh.model import LABEL_PROTOCOL, LABEL_SERVICE, Resource
from kmesh.model.types import DataplaneSpec, MeshExternalServiceSpec
from kmesh.model.types.common import DataSource
from kmesh.model.types.external_service import ExternalServiceTls
from kmesh.proxyconfig._config import Cluster, InboundConfig, OutboundConfig, ProxyConfig, UpstreamTls, seal
from kmesh.proxyconfig._endpoints import external_endpoints, service_endpoints
from kmesh.proxyconfig._names import cluster_name, external_cluster_name, sni_for, spiffe_id
from kmesh.proxyconfig._permissions import Permissions, known_clients
from kmesh.proxyconfig._resolve import resolve
from kmesh.proxyconfig._snapshot import MeshSnapshot, effective_tags, zone_of
from kmesh.proxyconfig._targeting import Destination, Subject
from kmesh.proxyconfig._topology import Topology

__all__ = ["generate_sidecar", "generate_sidecars", "upstream_tls"]


def _source(source: DataSource | None) -> tuple[str | None, str | None, bytes | None]:
    """``(secret, file, inline bytes)`` of a certificate or key source."""
    if source is None:
        return None, None, None
    return source.secret, source.file, source.inline_bytes()


def upstream_tls(tls: ExternalServiceTls | None) -> UpstreamTls | None:
    """The TLS a proxy originates to an external service, or None when its ``tls`` is not enabled."""
    if tls is None or not tls.enabled:
        return None
    version, verify = tls.version, tls.verification
    ca_secret, ca_file, ca_inline = _source(verify.ca_cert if verify else None)
    cert_secret, cert_file, cert_inline = _source(verify.client_cert if verify else None)
    key_secret, key_file, key_inline = _source(verify.client_key if verify else None)
    return UpstreamTls(
        server_name=verify.server_name if verify else None,
        min_version=version.min if version else "TLSAuto",
        max_version=version.max if version else "TLSAuto",
        allow_renegotiation=tls.allow_renegotiation,
        verification=verify.mode if verify else "Secured",
        subject_alt_names=[(san.type, san.value) for san in verify.subject_alt_names] if verify else [],
        ca_cert_secret=ca_secret,
        ca_cert_file=ca_file,
        ca_cert_inline=ca_inline,
        client_cert_secret=cert_secret,
        client_cert_file=cert_file,
        client_cert_inline=cert_inline,
        client_key_secret=key_secret,
        client_key_file=key_file,
        client_key_inline=key_inline,
    )


def _inbounds(
    zone: str, spec: DataplaneSpec, permissions: Permissions, notes: list[str]
) -> list[InboundConfig]:
    net = spec.networking
    result: list[InboundConfig] = []
    for index, inbound in enumerate(net.inbound):
        tags = effective_tags(inbound, zone)
        decision = permissions.for_inbound(index, inbound.name or f"{inbound.service}:{inbound.port}")
        notes.extend(decision.notes)
        result.append(
            InboundConfig(
                name=inbound.name,
                address=inbound.address or net.address,
                port=inbound.port,
                service_address=inbound.service_address or "127.0.0.1",
                service_port=inbound.service_port or inbound.port,
                service=inbound.service,
                protocol=tags.get(LABEL_PROTOCOL, "tcp"),
                tags=tags,
                allowed_spiffe_ids=decision.allowed,
                denied_spiffe_ids=decision.denied,
                shadow_denied_spiffe_ids=decision.shadow_denied,
                default_action=decision.default_action,
            )
        )
    return result


def _external_cluster(
    snapshot: MeshSnapshot, topo: Topology, subject: Subject, name: str, spec: MeshExternalServiceSpec
) -> tuple[Cluster, list[str]]:
    mesh_spec = snapshot.spec
    policies = resolve(snapshot, subject, Destination(name, external=True))
    forbidden = (
        mesh_spec.routing is not None and mesh_spec.routing.default_forbid_mesh_external_service_access
    )
    via_egress = mesh_spec.zone_egress
    notes: list[str] = []
    if forbidden:
        endpoints = []
        notes.append(
            f"cluster {external_cluster_name(name)}: no endpoints: mesh {snapshot.name} sets "
            "routing.defaultForbidMeshExternalServiceAccess"
        )
    else:
        endpoints = external_endpoints(snapshot.name, name, spec, topo.egresses if via_egress else None)
        if via_egress and not topo.egresses:
            notes.append(
                f"cluster {external_cluster_name(name)}: no endpoints: routing.zoneEgress is on but zone "
                f"{topo.zone} has no zone egress"
            )
    cluster = Cluster(
        name=external_cluster_name(name),
        service=name,
        tags={LABEL_SERVICE: name},
        external=True,
        mtls=via_egress,
        endpoints=endpoints,
        lb=policies.lb,
        timeout=policies.timeout,
        retry=policies.retry,
        circuit_breaker=policies.circuit_breaker,
        health_check=policies.health_check,
        upstream_tls=None if via_egress else upstream_tls(spec.tls),
    )
    return cluster, notes


def _service_cluster(
    snapshot: MeshSnapshot, topo: Topology, subject: Subject, service: str, tags: dict[str, str]
) -> tuple[Cluster, list[str]]:
    name = cluster_name(service, tags)
    policies = resolve(snapshot, subject, Destination(service))
    built = service_endpoints(
        topo,
        label=f"cluster {name}",
        service=service,
        subset=tags,
        sni=sni_for(snapshot.name, service, tags),
        mtls=snapshot.mtls,
        locality=policies.locality,
        via_egress=snapshot.spec.zone_egress,
    )
    cluster = Cluster(
        name=name,
        service=service,
        tags=tags,
        mtls=snapshot.mtls,
        weight_scale=built.weight_scale,
        endpoints=built.endpoints,
        lb=policies.lb,
        timeout=policies.timeout,
        retry=policies.retry,
        circuit_breaker=policies.circuit_breaker,
        health_check=policies.health_check,
    )
    return cluster, built.notes


@final
@dataclass(frozen=True, slots=True)
class _ZoneView:
    """What every sidecar of a zone shares, computed once per snapshot: generating a proxy's config then
    costs in proportion to that proxy's inbounds and outbounds, not to the size of the zone."""

    snapshot: MeshSnapshot
    zone: str
    topology: Topology
    clients: dict[str, list[dict[str, str]]]
    externals: dict[str, MeshExternalServiceSpec]

    @classmethod
    def of(cls, snapshot: MeshSnapshot, zone: str) -> _ZoneView:
        externals = {}
        for resource in snapshot.external_services:
            assert isinstance(resource.spec, MeshExternalServiceSpec)  # checked by MeshSnapshot
            externals[resource.meta.name] = resource.spec
        clients = known_clients(snapshot, zone) if snapshot.mtls else {}
        return cls(snapshot, zone, Topology.of(snapshot, zone), clients, externals)


def generate_sidecar(snapshot: MeshSnapshot, zone: str, dataplane: Resource) -> ProxyConfig:
    """The config of ``dataplane``, a Dataplane of ``zone`` in the snapshot's mesh.

    Raises ValueError when ``dataplane`` is not a Dataplane, is in another mesh, or belongs to another zone.
    """
    return _generate(_ZoneView.of(snapshot, zone), dataplane)


def generate_sidecars(
    snapshot: MeshSnapshot, zone: str, dataplanes: Iterable[Resource] | None = None
) -> dict[str, ProxyConfig]:
    """The configs of ``dataplanes`` (every dataplane of ``zone`` in the snapshot when None), by name, each
    equal to what ``generate_sidecar`` returns for it; the zone is analysed once for all of them.

    Raises ValueError as ``generate_sidecar``.
    """
    view = _ZoneView.of(snapshot, zone)
    chosen = [r for r, _ in snapshot.local_dataplanes(zone)] if dataplanes is None else list(dataplanes)
    return {resource.meta.name: _generate(view, resource) for resource in chosen}


def _generate(view: _ZoneView, dataplane: Resource) -> ProxyConfig:
    snapshot, zone, topo = view.snapshot, view.zone, view.topology
    spec = dataplane.spec
    if dataplane.meta.type != "Dataplane" or not isinstance(spec, DataplaneSpec):
        raise ValueError(f"expected a Dataplane, got {dataplane.meta.type} {dataplane.meta.name!r}")
    if dataplane.meta.mesh != snapshot.name:
        raise ValueError(
            f"dataplane {dataplane.meta.name!r} is in mesh {dataplane.meta.mesh!r}, not {snapshot.name!r}"
        )
    if zone_of(dataplane, zone) != zone:
        raise ValueError(
            f"dataplane {dataplane.meta.name!r} belongs to zone {zone_of(dataplane, zone)!r}, not {zone!r}"
        )
    subject = Subject.of_dataplane(dataplane, zone)
    permissions = Permissions(snapshot, subject, view.clients)
    notes = permissions.notes()
    inbounds = _inbounds(zone, spec, permissions, notes)
    outbounds: list[OutboundConfig] = []
    clusters: dict[str, Cluster] = {}
    for outbound in spec.networking.outbound:
        service = outbound.service_name
        tags = dict(sorted({**outbound.tags, LABEL_SERVICE: service}.items()))
        external = view.externals.get(service)
        if external is not None and len(tags) == 1:
            name = external_cluster_name(service)
            if name not in clusters:
                clusters[name], more = _external_cluster(snapshot, topo, subject, service, external)
                notes.extend(more)
        else:
            name = cluster_name(service, tags)
            if name not in clusters:
                clusters[name], more = _service_cluster(snapshot, topo, subject, service, tags)
                notes.extend(more)
        address = outbound.address or "127.0.0.1"
        outbounds.append(
            OutboundConfig(address=address, port=outbound.port, service=service, tags=tags, cluster=name)
        )
    if not snapshot.mtls and spec.networking.outbound:
        notes.append(f"cross-zone endpoints need mTLS: mesh {snapshot.name} has no enabled mTLS backend")
    net = spec.networking
    services = [i.service for i in net.inbound] or ([net.gateway.tags[LABEL_SERVICE]] if net.gateway else [])
    config = ProxyConfig(
        proxy_type="sidecar",
        mesh=snapshot.name,
        name=dataplane.meta.name,
        zone=zone,
        mtls_enabled=snapshot.mtls,
        identity=spiffe_id(snapshot.name, services[0]) if snapshot.mtls and services else "",
        inbounds=inbounds,
        outbounds=sorted(outbounds, key=lambda o: (o.address, o.port)),
        clusters=[clusters[name] for name in sorted(clusters)],
        notes=sorted(set(notes)),
    )
    return seal(config)
