"""Golden configs of sidecars for the routing cases of DESIGN.md "Cross-zone routing": one zone, three zones
with 1, 2 and 0 instances, tag subsets, locality priorities with a failover order, egress, mTLS off.

Each test asserts the behaviour it is about, then compares the whole config with its golden file."""

from __future__ import annotations

from collections.abc import Callable

from kmesh.proxyconfig import Cluster, MeshSnapshot, ProxyConfig, generate_egress, generate_sidecar, sni_for

from .world import (
    SERVICE,
    allow_all,
    dataplane,
    egress,
    from_zone,
    inbound,
    ingress,
    mesh,
    outbound,
    policy,
    render,
)

Golden = Callable[[str, str], None]

WEB = dataplane("web-1", "10.0.0.1", [inbound("web", 8080)], [outbound("backend", 10001)])


def cluster(config: ProxyConfig, name: str) -> Cluster:
    (found,) = [c for c in config.clusters if c.name == name]
    return found


def weights(c: Cluster) -> dict[tuple[str, str], int]:
    return {(e.zone, e.via): e.weight for e in c.endpoints}


def test_single_zone(golden: Golden) -> None:
    snapshot = MeshSnapshot(
        mesh=mesh(),
        dataplanes=(
            WEB,
            dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090, version="v1")]),
            dataplane("backend-2", "10.0.0.3", [inbound("backend", 9090, version="v2")]),
            dataplane("backend-3", "10.0.0.4", [inbound("backend", 9090, ready=False)]),
        ),
        policies=(allow_all(),),
    )
    config = generate_sidecar(snapshot, "zone-1", WEB)
    backend = cluster(config, "backend")
    # The unhealthy backend-3 is no endpoint; the healthy ones are direct mTLS, weight 1, priority 0.
    assert [(e.address, e.weight, e.priority, e.via) for e in backend.endpoints] == [
        ("10.0.0.2", 1, 0, "local"),
        ("10.0.0.3", 1, 0, "local"),
    ]
    assert {e.spiffe_id for e in backend.endpoints} == {"spiffe://default/backend"}
    assert config.identity == "spiffe://default/web"
    assert config.notes == []
    golden("single-zone", render(config))


def three_zones(*, mtls: bool = True, locality: bool = False, zone_egress: bool = False) -> MeshSnapshot:
    return MeshSnapshot(
        mesh=mesh(mtls=mtls, locality=locality, zone_egress=zone_egress),
        dataplanes=(WEB, dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090)])),
        zone_ingresses=(
            ingress("zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=[({SERVICE: "backend"}, 2)]),
            ingress(
                "zi-3",
                "zone-3",
                advertised=("34.0.0.3", 10001),
                services=[({SERVICE: "backend"}, 0), ({SERVICE: "web"}, 4)],
            ),
        ),
        policies=(allow_all(),),
    )


def test_three_zones_weights_follow_instance_counts(golden: Golden) -> None:
    config = generate_sidecar(three_zones(), "zone-1", WEB)
    backend = cluster(config, "backend")
    # zone-1 has 1 instance, zone-2 2, zone-3 none: 1/3 local, 2/3 to zone-2, zone-3 absent.
    assert weights(backend) == {("zone-1", "local"): 1, ("zone-2", "ingress"): 2}
    (remote,) = [e for e in backend.endpoints if e.via == "ingress"]
    assert (remote.address, remote.port, remote.priority) == ("34.0.0.2", 10001, 0)
    assert remote.sni == sni_for("default", "backend", {})
    assert remote.spiffe_id == "spiffe://default/backend"
    golden("three-zones", render(config))


def test_tag_subsets(golden: Golden) -> None:
    web = dataplane(
        "web-1",
        "10.0.0.1",
        [inbound("web", 8080)],
        [outbound("backend", 10001), outbound("backend", 10002, version="v2")],
    )
    snapshot = MeshSnapshot(
        mesh=mesh(),
        dataplanes=(
            web,
            dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090, version="v1")]),
            dataplane("backend-2", "10.0.0.3", [inbound("backend", 9090, version="v2")]),
        ),
        zone_ingresses=(
            ingress(
                "zi-2",
                "zone-2",
                advertised=("34.0.0.2", 10001),
                services=[
                    ({SERVICE: "backend", "version": "v1"}, 1),
                    ({SERVICE: "backend", "version": "v2"}, 3),
                ],
            ),
        ),
        policies=(allow_all(),),
    )
    config = generate_sidecar(snapshot, "zone-1", web)
    assert [(o.port, o.cluster) for o in config.outbounds] == [
        (10001, "backend"),
        (10002, "backend{version=v2}"),
    ]
    assert weights(cluster(config, "backend")) == {("zone-1", "local"): 1, ("zone-2", "ingress"): 4}
    v2 = cluster(config, "backend{version=v2}")
    assert [(e.address, e.weight) for e in v2.endpoints] == [("10.0.0.3", 1), ("34.0.0.2", 3)]
    assert {e.sni for e in v2.endpoints if e.via == "ingress"} == {
        sni_for("default", "backend", {"version": "v2"})
    }
    golden("tag-subsets", render(config))


def test_locality_priorities_follow_the_failover_order(golden: Golden) -> None:
    web = dataplane(
        "web-1", "10.0.0.1", [inbound("web", 8080)], [outbound("backend", 10001), outbound("cache", 10002)]
    )
    strategy = policy(
        "MeshLoadBalancingStrategy",
        "backend-failover",
        {
            "targetRef": {"kind": "Mesh"},
            "to": [
                {
                    "targetRef": {"kind": "MeshService", "name": "backend"},
                    "default": {
                        "localityAwareness": {
                            "crossZone": {
                                "failover": [
                                    {
                                        "from": {"zones": ["zone-9"]},
                                        "to": {"type": "Only", "zones": ["zone-2"]},
                                    },
                                    {"to": {"type": "Only", "zones": ["zone-4"]}},
                                    {"to": {"type": "AnyExcept", "zones": ["zone-3"]}},
                                ],
                                "failoverThreshold": {"percentage": 70},
                            }
                        }
                    },
                },
                {
                    "targetRef": {"kind": "MeshService", "name": "cache"},
                    "default": {"localityAwareness": {"disabled": True}},
                },
            ],
        },
    )
    advertised = [({SERVICE: "backend"}, 1), ({SERVICE: "cache"}, 1)]
    snapshot = MeshSnapshot(
        mesh=mesh(locality=True),
        dataplanes=(
            web,
            dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090)]),
            dataplane("cache-1", "10.0.0.3", [inbound("cache", 6379)]),
        ),
        zone_ingresses=tuple(
            ingress(f"zi-{n}", f"zone-{n}", advertised=(f"34.0.0.{n}", 10001), services=advertised)
            for n in (2, 3, 4)
        ),
        policies=(allow_all(), strategy),
    )
    config = generate_sidecar(snapshot, "zone-1", web)
    backend = cluster(config, "backend")
    # The zone-9 step does not apply to zone-1; zone-4 comes first, then the rest but zone-3.
    assert {e.zone: e.priority for e in backend.endpoints} == {"zone-1": 0, "zone-4": 1, "zone-2": 2}
    assert (backend.lb.locality_aware, backend.lb.failover_threshold_percent) == (True, 70.0)
    assert (
        "cluster backend: zone zone-3 left out by MeshLoadBalancingStrategy crossZone.failover"
        in config.notes
    )
    cache = cluster(config, "cache")
    # Disabled by the policy although the mesh asks for locality awareness: one level, all zones.
    assert not cache.lb.locality_aware
    assert {e.priority for e in cache.endpoints} == {0}
    assert len(cache.endpoints) == 4
    golden("locality-failover", render(config))


def test_mesh_locality_without_strategy_puts_every_remote_zone_second() -> None:
    config = generate_sidecar(three_zones(locality=True), "zone-1", WEB)
    assert {e.zone: e.priority for e in cluster(config, "backend").endpoints} == {"zone-1": 0, "zone-2": 1}


def test_zone_egress(golden: Golden) -> None:
    external = policy(
        "MeshExternalService",
        "httpbin",
        {
            "match": {"type": "HostnameGenerator", "port": 443, "protocol": "http"},
            "endpoints": [{"address": "httpbin.org", "port": 443}],
            "tls": {"enabled": True, "verification": {"serverName": "httpbin.org"}},
        },
    )
    web = dataplane(
        "web-1", "10.0.0.1", [inbound("web", 8080)], [outbound("backend", 10001), outbound("httpbin", 10443)]
    )
    base = three_zones(zone_egress=True)
    snapshot = MeshSnapshot(
        mesh=base.mesh,
        dataplanes=(web, *base.dataplanes[1:]),
        zone_ingresses=base.zone_ingresses,
        zone_egresses=(egress("ze-1", "10.0.8.1"), from_zone(egress("ze-2", "10.1.8.1"), "zone-2")),
        policies=base.policies,
        external_services=(external,),
    )
    config = generate_sidecar(snapshot, "zone-1", web)
    backend = cluster(config, "backend")
    # Remote instances go through this zone's egress (not zone-2's), which keeps their weight.
    assert [(e.address, e.via, e.weight) for e in backend.endpoints] == [
        ("10.0.0.2", "local", 1),
        ("10.0.8.1", "egress", 2),
    ]
    httpbin = cluster(config, "external/httpbin")
    (hop,) = httpbin.endpoints
    assert (hop.address, hop.via, hop.spiffe_id) == ("10.0.8.1", "egress", "spiffe://default/zone-egress")
    assert httpbin.mtls
    assert httpbin.upstream_tls is None
    golden("zone-egress-sidecar", render(config))
    egress_config = generate_egress([snapshot], "zone-1", egress("ze-1", "10.0.8.1"))
    assert egress_config.egress is not None
    route = egress_config.egress.routes[sni_for("default", "backend", {})]
    assert [(e.address, e.weight, e.via) for e in route.endpoints] == [("34.0.0.2", 2, "ingress")]
    (ext,) = egress_config.egress.external_services.values()
    assert ext.upstream_tls is not None
    assert ext.upstream_tls.server_name == "httpbin.org"
    golden("zone-egress", render(egress_config))


def test_mtls_off_has_no_remote_endpoints_and_says_why(golden: Golden) -> None:
    config = generate_sidecar(three_zones(mtls=False), "zone-1", WEB)
    backend = cluster(config, "backend")
    assert [(e.via, e.spiffe_id) for e in backend.endpoints] == [("local", None)]
    assert not backend.mtls
    assert not config.mtls_enabled
    assert config.identity == ""
    assert "cross-zone endpoints need mTLS: mesh default has no enabled mTLS backend" in config.notes
    assert any("zone-2" in n and "need mTLS" in n for n in config.notes)
    # Peers have no identity: permissions cannot be enforced, and the config says so.
    assert config.inbounds[0].default_action == "Allow"
    assert any(n.startswith("MeshTrafficPermission is not enforced") for n in config.notes)
    golden("mtls-off", render(config))
