"""Sidecar generation at its edges: several ingresses in a zone, a missing egress, external services,
gateways, and refused inputs."""

from __future__ import annotations

import pytest

from kmesh.model import Resource, parse_resource
from kmesh.proxyconfig import MeshSnapshot, generate_sidecar, sni_for

from .world import SERVICE, allow_all, dataplane, egress, from_zone, inbound, ingress, mesh, outbound, policy

WEB = dataplane(
    "web-1", "10.0.0.1", [inbound("web", 8080)], [outbound("backend", 10001), outbound("httpbin", 10443)]
)
BACKEND = dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090)])
HTTPBIN = policy(
    "MeshExternalService",
    "httpbin",
    {
        "match": {"port": 443, "protocol": "http"},
        "endpoints": [{"address": "httpbin.org", "port": 443}, {"address": "1.2.3.4", "port": 8443}],
        "tls": {
            "enabled": True,
            "version": {"min": "TLS12"},
            "verification": {
                "mode": "SkipSAN",
                "caCert": {"inlineString": "-----BEGIN CERTIFICATE-----"},
                "clientCert": {"secret": "client-cert"},
                "clientKey": {"secret": "client-key"},
            },
        },
    },
)


def snapshot(*, zone_egress: bool = False, forbid_external: bool = False) -> MeshSnapshot:
    return MeshSnapshot(
        mesh=mesh(zone_egress=zone_egress, forbid_external=forbid_external),
        dataplanes=(WEB, BACKEND),
        zone_ingresses=(
            ingress("zi-2a", "zone-2", advertised=("34.0.0.1", 10001), services=[({SERVICE: "backend"}, 3)]),
            ingress("zi-2b", "zone-2", advertised=("34.0.0.2", 10001), services=[({SERVICE: "backend"}, 3)]),
        ),
        policies=(allow_all(),),
        external_services=(HTTPBIN,),
    )


def test_a_zone_with_two_ingresses_keeps_its_share() -> None:
    config = generate_sidecar(snapshot(), "zone-1", WEB)
    backend = next(c for c in config.clusters if c.name == "backend")
    # 1 local instance against 3 in zone-2 split over two ingresses: weights scaled by 2 stay whole.
    assert backend.weight_scale == 2
    assert [(e.address, e.weight) for e in backend.endpoints] == [
        ("10.0.0.2", 2),
        ("34.0.0.1", 3),
        ("34.0.0.2", 3),
    ]


def test_zone_egress_without_an_egress_leaves_remote_zones_out_and_says_so() -> None:
    config = generate_sidecar(snapshot(zone_egress=True), "zone-1", WEB)
    backend = next(c for c in config.clusters if c.name == "backend")
    assert [e.via for e in backend.endpoints] == ["local"]
    assert (
        "cluster backend: instances in zone(s) zone-2 left out: routing.zoneEgress is on but zone zone-1 has "
        "no zone egress" in config.notes
    )
    assert any(n.startswith("cluster external/httpbin: no endpoints") for n in config.notes)


def test_remote_share_is_kept_over_several_egresses() -> None:
    base = snapshot(zone_egress=True)
    world = MeshSnapshot(
        mesh=base.mesh,
        dataplanes=base.dataplanes,
        zone_ingresses=base.zone_ingresses,
        zone_egresses=(egress("ze-1", "10.0.8.1"), egress("ze-2", "10.0.8.2")),
        policies=base.policies,
    )
    backend = next(c for c in generate_sidecar(world, "zone-1", WEB).clusters if c.name == "backend")
    # 1 local instance against 3 in zone-2: the two egresses together weigh three times the local one.
    assert backend.weight_scale == 2
    assert [(e.address, e.via, e.weight) for e in backend.endpoints] == [
        ("10.0.0.2", "local", 2),
        ("10.0.8.1", "egress", 3),
        ("10.0.8.2", "egress", 3),
    ]
    assert {e.sni for e in backend.endpoints if e.via == "egress"} == {sni_for("default", "backend")}


def test_external_service_reached_directly_originates_tls() -> None:
    config = generate_sidecar(snapshot(), "zone-1", WEB)
    httpbin = next(c for c in config.clusters if c.name == "external/httpbin")
    assert (httpbin.external, httpbin.mtls) == (True, False)
    assert [(e.address, e.port, e.via, e.spiffe_id) for e in httpbin.endpoints] == [
        ("httpbin.org", 443, "external", None),
        ("1.2.3.4", 8443, "external", None),
    ]
    tls = httpbin.upstream_tls
    assert tls is not None
    assert (tls.min_version, tls.verification) == ("TLS12", "SkipSAN")
    assert tls.ca_cert_inline == b"-----BEGIN CERTIFICATE-----"
    assert (tls.client_cert_secret, tls.client_key_secret) == ("client-cert", "client-key")


def test_forbidden_external_access_gets_no_endpoints() -> None:
    config = generate_sidecar(snapshot(forbid_external=True), "zone-1", WEB)
    httpbin = next(c for c in config.clusters if c.name == "external/httpbin")
    assert httpbin.endpoints == []
    assert any("defaultForbidMeshExternalServiceAccess" in n for n in config.notes)


def test_outbounds_to_one_subset_share_a_cluster() -> None:
    web = dataplane(
        "web-1", "10.0.0.1", [inbound("web", 8080)], [outbound("backend", 1), outbound("backend", 2)]
    )
    config = generate_sidecar(MeshSnapshot(mesh=mesh(), dataplanes=(web, BACKEND)), "zone-1", web)
    assert [o.cluster for o in config.outbounds] == ["backend", "backend"]
    assert [c.name for c in config.clusters] == ["backend"]


def test_a_delegated_gateway_takes_its_identity_and_policies_as_a_gateway() -> None:
    gateway = parse_resource(
        {
            "type": "Dataplane",
            "mesh": "default",
            "name": "edge-1",
            "networking": {
                "address": "10.0.0.7",
                "gateway": {"type": "DELEGATED", "tags": {SERVICE: "edge"}},
                "outbound": [outbound("backend", 10001)],
            },
        }
    )

    def timeouts(proxy_types: list[str], connect: str) -> Resource:
        entry = {"targetRef": {"kind": "Mesh"}, "default": {"connectionTimeout": connect}}
        target = {"kind": "Mesh", "proxyTypes": proxy_types}
        return policy("MeshTimeout", f"for-{proxy_types[0].lower()}", {"targetRef": target, "to": [entry]})

    world = MeshSnapshot(
        mesh=mesh(),
        dataplanes=(gateway, BACKEND),
        policies=(timeouts(["Gateway"], "7s"), timeouts(["Sidecar"], "9s")),
    )
    config = generate_sidecar(world, "zone-1", gateway)
    assert (config.identity, config.inbounds) == ("spiffe://default/edge", [])
    (backend,) = config.clusters
    assert backend.timeout.connect_timeout_s == 7.0


def test_refused_inputs() -> None:
    base = snapshot()
    with pytest.raises(ValueError, match="belongs to zone 'zone-2'"):
        generate_sidecar(base, "zone-1", from_zone(BACKEND, "zone-2"))
    other_mesh = dataplane("db-1", "10.0.0.9", [inbound("db", 5432)], mesh_name="data")
    with pytest.raises(ValueError, match="is in mesh 'data'"):
        generate_sidecar(base, "zone-1", other_mesh)
    with pytest.raises(ValueError, match="expected a Dataplane"):
        generate_sidecar(base, "zone-1", HTTPBIN)
