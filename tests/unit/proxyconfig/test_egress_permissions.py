"""MeshTrafficPermission for MeshExternalServices at the zone egress: which top-level targetRefs guard an
external service (``kind: MeshExternalService`` by name or labels, ``kind: Mesh``), how they are ordered
(the more specific kind wins), the fail-closed default with mTLS, and the wire defaults that keep a route
from an older control plane open to the mesh as before."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from kmesh.errors import InvalidResource
from kmesh.model import Resource, parse_resource
from kmesh.model.types import MeshTrafficPermissionSpec
from kmesh.proxyconfig import ExternalRoute, MeshSnapshot, generate_egress, generate_sidecar

from .world import MESH, SERVICE, allow_all, dataplane, egress, ingress, mesh, policy

WEB = dataplane("web-1", "10.0.0.1", [{"port": 8080, "tags": {SERVICE: "web", "version": "v1"}}])
BACKEND = dataplane("backend-1", "10.0.0.2", [{"port": 9090, "tags": {SERVICE: "backend"}}])
WEB_ID = "spiffe://default/web"
BACKEND_ID = "spiffe://default/backend"


def external(name: str, labels: dict[str, str] | None = None) -> Resource:
    doc: dict[str, Any] = {
        "type": "MeshExternalService",
        "mesh": MESH,
        "name": name,
        "spec": {"match": {"port": 443}, "endpoints": [{"address": f"{name}.example", "port": 443}]},
    }
    if labels:
        doc["labels"] = labels
    return parse_resource(doc)


HTTPBIN = external("httpbin", {"team": "payments"})
OTHER = external("other")


def mtp(name: str, target: dict[str, Any], rules: list[tuple[dict[str, Any], str]]) -> Resource:
    entries = [{"targetRef": r, "default": {"action": a}} for r, a in rules]
    return policy("MeshTrafficPermission", name, {"targetRef": target, "from": entries})


def snapshot(*policies: Resource, zone_ingresses: tuple[Resource, ...] = ()) -> MeshSnapshot:
    return MeshSnapshot(
        mesh=mesh(zone_egress=True),
        dataplanes=(WEB, BACKEND),
        zone_ingresses=zone_ingresses,
        policies=policies,
        external_services=(HTTPBIN, OTHER),
    )


def routes(
    *policies: Resource, zone_ingresses: tuple[Resource, ...] = ()
) -> tuple[dict[str, ExternalRoute], list[str]]:
    config = generate_egress([snapshot(*policies, zone_ingresses=zone_ingresses)], "zone-1", egress())
    assert config.egress is not None
    return {r.name: r for r in config.egress.external_services.values()}, config.notes


def lists(route: ExternalRoute) -> tuple[list[str], list[str], list[str], str]:
    return (
        route.allowed_spiffe_ids,
        route.denied_spiffe_ids,
        route.shadow_denied_spiffe_ids,
        route.default_action,
    )


def test_without_any_permission_every_client_is_denied_and_a_note_says_so() -> None:
    found, notes = routes()
    for name, route in found.items():
        assert lists(route) == ([], [BACKEND_ID, WEB_ID], [], "Deny")
        assert (
            f"mesh default: external service {name}: every client is denied: no MeshTrafficPermission "
            "allows any known client"
        ) in notes


def test_a_mesh_wide_allow_covers_external_services() -> None:
    found, notes = routes(allow_all())
    for route in found.values():
        assert lists(route) == ([BACKEND_ID, WEB_ID], [], [], "Allow")
    assert notes == []


def test_a_policy_naming_one_external_service_guards_only_that_one() -> None:
    web_only = mtp(
        "web-to-httpbin",
        {"kind": "MeshExternalService", "name": "httpbin"},
        [({"kind": "MeshService", "name": "web"}, "Allow")],
    )
    found, notes = routes(web_only)
    assert lists(found["httpbin"]) == ([WEB_ID], [BACKEND_ID], [], "Deny")
    assert lists(found["other"]) == ([], [BACKEND_ID, WEB_ID], [], "Deny")
    assert not any("external service httpbin: every client" in n for n in notes)
    assert any("external service other: every client" in n for n in notes)


def test_labels_select_external_services_by_their_resource_labels() -> None:
    by_team = mtp(
        "payments",
        {"kind": "MeshExternalService", "labels": {"team": "payments"}},
        [({"kind": "Mesh"}, "Allow")],
    )
    found, _ = routes(by_team)
    assert found["httpbin"].default_action == "Allow"
    assert lists(found["other"]) == ([], [BACKEND_ID, WEB_ID], [], "Deny")


def test_the_external_service_policy_overrides_a_mesh_wide_allow() -> None:
    no_backend = mtp(
        "no-backend",
        {"kind": "MeshExternalService", "name": "httpbin"},
        [({"kind": "MeshService", "name": "backend"}, "Deny")],
    )
    # The policy name sorting first is applied last among equals; here the top-level kind decides alone.
    found, _ = routes(no_backend, allow_all())
    assert lists(found["httpbin"]) == ([WEB_ID], [BACKEND_ID], [], "Allow")
    assert lists(found["other"]) == ([BACKEND_ID, WEB_ID], [], [], "Allow")


def test_shadow_deny_allows_and_flags() -> None:
    trial = mtp(
        "trial",
        {"kind": "MeshExternalService", "name": "httpbin"},
        [({"kind": "Mesh"}, "Allow"), ({"kind": "MeshService", "name": "web"}, "AllowWithShadowDeny")],
    )
    found, _ = routes(trial)
    assert lists(found["httpbin"]) == ([BACKEND_ID, WEB_ID], [], [WEB_ID], "Allow")


def test_clients_of_other_zones_and_split_services_follow_the_inbound_rules() -> None:
    # web also runs in zone-2 as v2: an allow of v1 only splits the service, which is then denied whole.
    remote = ingress(
        "zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=[({SERVICE: "web", "version": "v2"}, 1)]
    )
    v1_only = mtp(
        "v1-only",
        {"kind": "MeshExternalService", "name": "httpbin"},
        [({"kind": "MeshSubset", "tags": {"version": "v1"}}, "Allow")],
    )
    found, notes = routes(v1_only, zone_ingresses=(remote,))
    assert lists(found["httpbin"]) == ([], [BACKEND_ID, WEB_ID], [], "Deny")
    assert (
        "mesh default: external service httpbin: web is denied: MeshTrafficPermission allows only some of "
        "its instances (by tags), and peers are checked by service identity"
    ) in notes


def test_a_mesh_policy_limited_to_sidecars_does_not_reach_the_egress() -> None:
    sidecars = mtp("sidecars", {"kind": "Mesh", "proxyTypes": ["Sidecar"]}, [({"kind": "Mesh"}, "Allow")])
    found, _ = routes(sidecars)
    assert found["httpbin"].default_action == "Deny"


def test_an_external_service_policy_selects_no_sidecar_inbound() -> None:
    only_external = mtp(
        "ext", {"kind": "MeshExternalService", "name": "httpbin"}, [({"kind": "Mesh"}, "Allow")]
    )
    (web_inbound,) = generate_sidecar(snapshot(only_external), "zone-1", WEB).inbounds
    assert (web_inbound.allowed_spiffe_ids, web_inbound.default_action) == ([], "Deny")


def test_the_model_accepts_an_external_service_as_the_top_level_target() -> None:
    parsed = mtp("ok", {"kind": "MeshExternalService", "name": "httpbin"}, [({"kind": "Mesh"}, "Allow")])
    assert isinstance(parsed.spec, MeshTrafficPermissionSpec)
    with pytest.raises(InvalidResource) as info:
        mtp("no-name", {"kind": "MeshExternalService"}, [({"kind": "Mesh"}, "Allow")])
    assert "required with kind MeshExternalService" in str(info.value)
    # An external service is never a client: from[] still refuses the kind.
    with pytest.raises(InvalidResource):
        mtp("bad-from", {"kind": "Mesh"}, [({"kind": "MeshExternalService", "name": "httpbin"}, "Allow")])


def test_a_route_from_an_older_control_plane_keeps_the_mesh_open() -> None:
    """Without the permission fields (a control plane that predates them), a route lets any identity of
    the mesh through, as the egress did before; new fields never break an older reader."""
    old = {"mesh": MESH, "name": "httpbin", "identity": "spiffe://default/zone-egress"}
    route = msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=ExternalRoute)
    assert lists(route) == ([], [], [], "Allow")
    denying = ExternalRoute(mesh=MESH, name="httpbin", identity="x", default_action="Deny")

    class OlderExternalRoute(msgspec.Struct, kw_only=True):
        mesh: str
        name: str
        identity: str

    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(denying), type=OlderExternalRoute)
    assert decoded.name == "httpbin"
