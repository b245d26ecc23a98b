"""MeshTrafficPermission edge cases: deny by default with mTLS, per-inbound selection, unknown peers."""

from __future__ import annotations

from typing import Any

from kmesh.proxyconfig import InboundConfig, MeshSnapshot, generate_sidecar

from .world import SERVICE, allow_all, dataplane, inbound, ingress, mesh, policy

BACKEND = dataplane(
    "backend-1",
    "10.0.0.2",
    [
        {**inbound("backend", 9090), "name": "api"},
        {**inbound("backend", 9091, ready=False), "name": "metrics"},
    ],
)
WEB = dataplane("web-1", "10.0.0.1", [inbound("web", 8080)])


def inbounds(*policies: Any, mtls: bool = True) -> list[InboundConfig]:
    snapshot = MeshSnapshot(mesh=mesh(mtls=mtls), dataplanes=(BACKEND, WEB), policies=tuple(policies))
    return generate_sidecar(snapshot, "zone-1", BACKEND).inbounds


def mtp(name: str, target: dict[str, Any], rules: list[tuple[dict[str, Any], str]]) -> Any:
    entries = [{"targetRef": r, "default": {"action": a}} for r, a in rules]
    return policy("MeshTrafficPermission", name, {"targetRef": target, "from": entries})


def test_mtls_without_any_permission_denies_everyone() -> None:
    for config in inbounds():
        assert (config.allowed_spiffe_ids, config.default_action) == ([], "Deny")
        assert config.denied_spiffe_ids == ["spiffe://default/backend", "spiffe://default/web"]


def test_allow_all_also_lets_unknown_peers_in() -> None:
    for config in inbounds(allow_all()):
        assert config.allowed_spiffe_ids == ["spiffe://default/backend", "spiffe://default/web"]
        assert (config.denied_spiffe_ids, config.default_action) == ([], "Allow")


def test_without_mtls_nothing_is_enforced() -> None:
    for config in inbounds(mtp("deny", {"kind": "Mesh"}, [({"kind": "Mesh"}, "Deny")]), mtls=False):
        assert (config.allowed_spiffe_ids, config.denied_spiffe_ids, config.default_action) == (
            [],
            [],
            "Allow",
        )


def test_a_section_name_selects_one_inbound() -> None:
    only_api = mtp(
        "web-to-api",
        {"kind": "Dataplane", "name": "backend-1", "sectionName": "api"},
        [({"kind": "MeshService", "name": "web"}, "Allow")],
    )
    api, metrics = inbounds(only_api)
    assert api.allowed_spiffe_ids == ["spiffe://default/web"]
    assert metrics.allowed_spiffe_ids == []


def test_a_deny_on_a_more_specific_target_overrides_a_mesh_allow() -> None:
    deny_web = mtp(
        "no-web",
        {"kind": "MeshService", "name": "backend"},
        [({"kind": "MeshService", "name": "web"}, "Deny")],
    )
    api, _ = inbounds(allow_all(), deny_web)
    assert api.allowed_spiffe_ids == ["spiffe://default/backend"]
    assert api.denied_spiffe_ids == ["spiffe://default/web"]
    assert api.default_action == "Allow"  # any other service of the mesh is still allowed


def test_services_known_only_from_policies_or_other_zones_are_listed() -> None:
    snapshot = MeshSnapshot(
        mesh=mesh(),
        dataplanes=(BACKEND,),
        zone_ingresses=(
            ingress("zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=[({SERVICE: "orders"}, 3)]),
        ),
        policies=(
            mtp(
                "named",
                {"kind": "Mesh"},
                [
                    ({"kind": "MeshService", "name": "reports"}, "Allow"),
                    ({"kind": "MeshService", "name": "orders"}, "Allow"),
                ],
            ),
        ),
    )
    api = generate_sidecar(snapshot, "zone-1", BACKEND).inbounds[0]
    assert api.allowed_spiffe_ids == ["spiffe://default/orders", "spiffe://default/reports"]
    assert api.default_action == "Deny"


def test_a_subset_allow_covering_every_known_instance_allows_the_service() -> None:
    # Every known web instance is in zone-1, so a zone-1 subset allows the whole service.
    by_zone = mtp(
        "zone-1-only",
        {"kind": "Mesh"},
        [({"kind": "MeshSubset", "tags": {"kuma.io/zone": "zone-1"}}, "Allow")],
    )
    api, _ = inbounds(by_zone)
    assert "spiffe://default/web" in api.allowed_spiffe_ids
    assert api.default_action == "Deny"  # a peer of an unknown service may be from anywhere
