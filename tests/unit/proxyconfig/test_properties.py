"""Properties of sidecar generation over random multi-zone worlds: weights equal instance counts, nothing
from a disabled zone or an unadvertised ingress, no remote endpoint without mTLS, priorities per the
locality rules, and the same input (in any order) gives the same bytes."""

from __future__ import annotations

import random
from dataclasses import dataclass

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from kmesh.model import Resource
from kmesh.proxyconfig import Cluster, MeshSnapshot, ProxyConfig, generate_sidecar

from .world import SERVICE, allow_all, dataplane, egress, inbound, ingress, mesh, outbound

LOCAL = "zone-1"


@dataclass(frozen=True)
class RemoteZone:
    name: str
    ingresses: int
    advertised: tuple[bool, ...]
    disabled: bool
    v1: int
    v2: int


@dataclass(frozen=True)
class World:
    mtls: bool
    locality: bool
    zone_egress: bool
    has_egress: bool
    subset: bool
    local: tuple[tuple[str, bool], ...]  # (version, healthy)
    remotes: tuple[RemoteZone, ...]
    seed: int

    def count(self, zone: RemoteZone) -> int:
        return zone.v2 if self.subset else zone.v1 + zone.v2

    def usable(self, zone: RemoteZone) -> list[int]:
        """Indexes of the zone's ingresses that other zones may dial."""
        return [] if zone.disabled else [i for i, ok in enumerate(zone.advertised) if ok]


@st.composite
def remote_zones(draw: st.DrawFn, number: int) -> RemoteZone:
    count = draw(st.integers(1, 3))
    return RemoteZone(
        name=f"zone-{number}",
        ingresses=count,
        advertised=tuple(draw(st.lists(st.booleans(), min_size=count, max_size=count))),
        disabled=draw(st.booleans()),
        v1=draw(st.integers(0, 4)),
        v2=draw(st.integers(0, 4)),
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    mtls = draw(st.booleans())
    return World(
        mtls=mtls,
        locality=draw(st.booleans()),
        zone_egress=mtls and draw(st.booleans()),
        has_egress=draw(st.booleans()),
        subset=draw(st.booleans()),
        local=tuple(draw(st.lists(st.tuples(st.sampled_from(["v1", "v2"]), st.booleans()), max_size=4))),
        remotes=tuple(draw(remote_zones(n)) for n in range(2, 2 + draw(st.integers(0, 3)))),
        seed=draw(st.integers(0, 2**16)),
    )


WEB_OUTBOUNDS = {False: outbound("backend", 10001), True: outbound("backend", 10001, version="v2")}


def build(world: World) -> tuple[MeshSnapshot, Resource]:
    web = dataplane("web-1", "10.0.0.1", [inbound("web", 8080)], [WEB_OUTBOUNDS[world.subset]])
    backends = [
        dataplane(f"backend-{i}", f"10.0.1.{i}", [inbound("backend", 9090, version=version, ready=healthy)])
        for i, (version, healthy) in enumerate(world.local)
    ]
    ingresses = [
        ingress(
            f"zi-{zone.name}-{i}",
            zone.name,
            advertised=(f"34.{zone.name[-1]}.0.{i}", 10001) if zone.advertised[i] else None,
            services=[
                ({SERVICE: "backend", "version": "v1"}, zone.v1),
                ({SERVICE: "backend", "version": "v2"}, zone.v2),
            ],
        )
        for zone in world.remotes
        for i in range(zone.ingresses)
    ]
    rng = random.Random(world.seed)
    for items in (backends, ingresses):
        rng.shuffle(items)
    snapshot = MeshSnapshot(
        mesh=mesh(mtls=world.mtls, locality=world.locality, zone_egress=world.zone_egress),
        dataplanes=(*backends, web),
        zone_ingresses=tuple(ingresses),
        zone_egresses=(egress(),) if world.has_egress else (),
        policies=(allow_all(),),
        disabled_zones=frozenset(z.name for z in world.remotes if z.disabled),
    )
    return snapshot, web


def backend_cluster(config: ProxyConfig) -> Cluster:
    (cluster,) = config.clusters
    return cluster


@settings(max_examples=300, deadline=None)
@given(world=worlds())
def test_weights_equal_instance_counts(world: World) -> None:
    snapshot, web = build(world)
    cluster = backend_cluster(generate_sidecar(snapshot, LOCAL, web))
    scale = cluster.weight_scale
    healthy_local = sum(1 for version, ok in world.local if ok and (version == "v2" or not world.subset))
    assert sum(e.weight for e in cluster.endpoints if e.via == "local") == healthy_local * scale
    reachable = {
        z.name: world.count(z) for z in world.remotes if world.mtls and world.usable(z) and world.count(z)
    }
    if world.zone_egress:
        remote_weight = sum(e.weight for e in cluster.endpoints if e.via == "egress")
        assert remote_weight == (sum(reachable.values()) * scale if world.has_egress else 0)
        return
    for zone in world.remotes:
        hops = [e for e in cluster.endpoints if e.zone == zone.name]
        assert sum(e.weight for e in hops) == reachable.get(zone.name, 0) * scale
        if zone.name in reachable and len(world.usable(zone)) == 1:
            assert [e.weight for e in hops] == [world.count(zone) * scale]
    if all(len(world.usable(z)) <= 1 for z in world.remotes if z.name in reachable):
        assert scale == 1  # one ingress per zone: each weight is exactly the zone's instance count


@settings(max_examples=300, deadline=None)
@given(world=worlds())
def test_no_endpoint_from_a_disabled_zone_or_an_unadvertised_ingress(world: World) -> None:
    snapshot, web = build(world)
    cluster = backend_cluster(generate_sidecar(snapshot, LOCAL, web))
    dialable = {f"34.{z.name[-1]}.0.{i}" for z in world.remotes for i in world.usable(z)}
    disabled = {z.name for z in world.remotes if z.disabled}
    for endpoint in cluster.endpoints:
        assert endpoint.zone not in disabled
        if endpoint.via == "ingress":
            assert endpoint.address in dialable
            assert endpoint.sni is not None
            assert endpoint.spiffe_id == "spiffe://default/backend"
        if not world.mtls:
            assert endpoint.via == "local"


@settings(max_examples=200, deadline=None)
@given(world=worlds())
def test_priorities_follow_locality(world: World) -> None:
    snapshot, web = build(world)
    cluster = backend_cluster(generate_sidecar(snapshot, LOCAL, web))
    for endpoint in cluster.endpoints:
        expected = 1 if world.locality and endpoint.via != "local" else 0
        assert endpoint.priority == expected
    assert cluster.lb.locality_aware is world.locality


@settings(max_examples=200, deadline=None)
@given(world=worlds(), other_seed=st.integers(0, 2**16))
def test_generation_is_deterministic(world: World, other_seed: int) -> None:
    first_snapshot, web = build(world)
    again_snapshot, _ = build(World(**{**world.__dict__, "seed": other_seed}))
    first = generate_sidecar(first_snapshot, LOCAL, web)
    again = generate_sidecar(again_snapshot, LOCAL, web)
    assert msgspec.msgpack.encode(first) == msgspec.msgpack.encode(again)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(first), type=ProxyConfig)
    assert decoded == first
