"""Zone ingress and egress tables, and the availableServices a zone advertises."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from kmesh.model.types.zoneingress import AvailableService
from kmesh.proxyconfig import MeshSnapshot, available_services, generate_egress, generate_ingress, sni_for
from kmesh.proxyconfig._topology import MAX_SUBSET_TAGS, subsets

from .world import (
    SERVICE,
    allow_all,
    dataplane,
    egress,
    from_zone,
    inbound,
    ingress,
    local_ingress,
    mesh,
    render,
)

Golden = Callable[[str, str], None]

DATAPLANES = (
    dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090, version="v1")]),
    dataplane("backend-2", "10.0.0.3", [inbound("backend", 9090, version="v2")]),
    dataplane("backend-3", "10.0.0.4", [inbound("backend", 9090, version="v2")]),
    dataplane("backend-4", "10.0.0.5", [inbound("backend", 9090, version="v2", ready=False)]),
    dataplane(
        "web-1", "10.0.0.1", [inbound("web", 8080, ready=None), {**inbound("web", 8081), "state": "Ignored"}]
    ),
)


def test_available_services_count_healthy_instances_per_tag_set() -> None:
    other_mesh = dataplane("db-1", "10.0.0.9", [inbound("db", 5432)], mesh_name="data")
    elsewhere = from_zone(
        dataplane("backend-9", "10.9.0.1", [inbound("backend", 9090, version="v1")]), "zone-2"
    )
    shuffled = [*DATAPLANES, other_mesh, elsewhere]
    random.Random(7).shuffle(shuffled)
    assert available_services(shuffled, "zone-1") == [
        AvailableService(mesh="data", tags={SERVICE: "db", "kuma.io/zone": "zone-1"}, instances=1),
        AvailableService(
            mesh="default", tags={SERVICE: "backend", "kuma.io/zone": "zone-1", "version": "v1"}, instances=1
        ),
        AvailableService(
            mesh="default", tags={SERVICE: "backend", "kuma.io/zone": "zone-1", "version": "v2"}, instances=2
        ),
        AvailableService(mesh="default", tags={SERVICE: "web", "kuma.io/zone": "zone-1"}, instances=1),
    ]


def test_subsets_keep_the_service_and_stay_bounded() -> None:
    assert subsets({SERVICE: "b", "v": "1", "z": "a"}) == [
        {SERVICE: "b"},
        {SERVICE: "b", "v": "1"},
        {SERVICE: "b", "z": "a"},
        {SERVICE: "b", "v": "1", "z": "a"},
    ]
    wide = {SERVICE: "b", **{f"t{i}": "x" for i in range(MAX_SUBSET_TAGS + 2)}}
    chosen = subsets(wide)
    assert len(chosen) == MAX_SUBSET_TAGS + 4  # the service alone, each tag alone, everything
    assert {SERVICE: "b"} in chosen
    assert wide in chosen


def test_ingress(golden: Golden) -> None:
    snapshot = MeshSnapshot(mesh=mesh(), dataplanes=DATAPLANES, policies=(allow_all(),))
    plain = MeshSnapshot(
        mesh=mesh(name="plain", mtls=False),
        dataplanes=(dataplane("x-1", "10.0.1.1", [inbound("x", 80)], mesh_name="plain"),),
    )
    config = generate_ingress([plain, snapshot], "zone-1", local_ingress())
    assert config.ingress is not None
    routes = config.ingress.routes
    whole = routes[sni_for("default", "backend")]
    assert [e.address for e in whole.endpoints] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]  # not the unready one
    v2 = routes[sni_for("default", "backend", {"version": "v2"})]
    assert [e.address for e in v2.endpoints] == ["10.0.0.3", "10.0.0.4"]
    full = routes[sni_for("default", "backend", {"version": "v1", "kuma.io/zone": "zone-1"})]
    assert [e.address for e in full.endpoints] == ["10.0.0.2"]
    assert {r.mesh for r in routes.values()} == {"default"}
    assert config.notes == [
        "mesh plain: no routes: cross-zone traffic needs mTLS, and the mesh has no enabled mTLS backend"
    ]
    golden("zone-ingress", render(config))


def test_egress_leaves_out_unusable_zones_and_meshes_without_zone_egress() -> None:
    backend = [({SERVICE: "backend"}, 2)]
    snapshot = MeshSnapshot(
        mesh=mesh(zone_egress=True),
        dataplanes=DATAPLANES,
        zone_ingresses=(
            ingress("zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=backend),
            ingress("zi-3", "zone-3", advertised=None, services=backend),
            ingress("zi-4", "zone-4", advertised=("34.0.0.4", 10001), services=backend),
        ),
        disabled_zones=frozenset({"zone-4"}),
    )
    other = MeshSnapshot(
        mesh=mesh(name="other"),
        zone_ingresses=(
            ingress("zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=backend, mesh_name="other"),
        ),
    )
    config = generate_egress([snapshot, other], "zone-1", egress())
    assert config.egress is not None
    assert {r.mesh for r in config.egress.routes.values()} == {"default"}
    route = config.egress.routes[sni_for("default", "backend")]
    assert [(e.zone, e.address) for e in route.endpoints] == [("zone-2", "34.0.0.2")]
    assert (
        "mesh default: zone zone-3 left out: ingress zi-3 of zone zone-3 has no advertised address"
        in config.notes
    )
    assert "mesh default: zone zone-4 left out: zone zone-4 is disabled" in config.notes


def test_wrong_inputs_are_refused() -> None:
    snapshot = MeshSnapshot(mesh=mesh())
    with pytest.raises(ValueError, match="belongs to zone 'zone-2'"):
        generate_ingress([snapshot], "zone-1", ingress("zi-2", "zone-2", advertised=None))
    with pytest.raises(ValueError, match="expected a ZoneEgress"):
        generate_egress([snapshot], "zone-1", local_ingress())
    with pytest.raises(ValueError, match="one snapshot per mesh"):
        generate_ingress([snapshot, snapshot], "zone-1", local_ingress())
    with pytest.raises(ValueError, match="is in mesh 'data'"):
        MeshSnapshot(
            mesh=mesh(), dataplanes=(dataplane("db-1", "10.0.0.9", [inbound("db", 1)], mesh_name="data"),)
        )
    with pytest.raises(ValueError, match="expected ZoneIngress resources"):
        MeshSnapshot(mesh=mesh(), zone_ingresses=(egress(),))
