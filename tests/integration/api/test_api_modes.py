"""Who may write what, by control-plane mode, and how a global serves copies synced from zones."""

from __future__ import annotations

from typing import Any

import msgspec

from kmesh.model import parse_resource

DATAPLANE = {
    "type": "Dataplane",
    "name": "web-1",
    "mesh": "default",
    "networking": {"address": "10.0.0.1", "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}]},
}
PERMISSION = {
    "type": "MeshTrafficPermission",
    "name": "allow-all",
    "mesh": "default",
    "spec": {
        "targetRef": {"kind": "Mesh"},
        "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
    },
}


async def _seed_mesh(store) -> None:
    await store.create(parse_resource({"type": "Mesh", "name": "default"}))


def _from_zone(doc: dict[str, Any], zone: str, address: str):
    """``doc`` as a zone CP would have synced it to the global: keyed by its zone of origin."""
    resource = parse_resource(doc | {"networking": doc["networking"] | {"address": address}})
    labels = dict(resource.meta.labels) | {"kuma.io/zone": zone, "kuma.io/origin": "zone"}
    return msgspec.structs.replace(
        resource, meta=msgspec.structs.replace(resource.meta, zone=zone, labels=labels)
    )


async def test_zone_refuses_policies_and_meshes(start_api, store) -> None:
    await _seed_mesh(store)
    api = await start_api(mode="zone", zone="east")
    status, body = await api.put("/meshes/default/meshtrafficpermissions/allow-all", PERMISSION)
    assert status == 400
    assert (
        body["details"]
        == "MeshTrafficPermission 'allow-all' is managed by the global control plane; apply it there"
    )
    assert "global control plane" in body["title"]
    status, body = await api.put("/meshes/other", {"type": "Mesh", "name": "other"})
    assert status == 400
    assert "apply it there" in body["details"]
    status, body = await api.delete("/meshes/default")
    assert status == 400
    # Refused means untouched.
    assert (await api.get("/meshes/default"))[0] == 200
    assert (await api.get("/meshes/default/meshtrafficpermissions/allow-all"))[0] == 404


async def test_zone_accepts_dataplanes(start_api, store) -> None:
    await _seed_mesh(store)
    api = await start_api(mode="zone", zone="east")
    status, stored = await api.put("/meshes/default/dataplanes/web-1", DATAPLANE)
    assert status == 201
    assert stored["name"] == "web-1"
    assert (await api.delete("/meshes/default/dataplanes/web-1"))[0] == 200


async def test_global_refuses_dataplanes_but_takes_policies(start_api) -> None:
    api = await start_api(mode="global")
    await api.ok("PUT", "/meshes/default", {"type": "Mesh", "name": "default"})
    status, body = await api.put("/meshes/default/dataplanes/web-1", DATAPLANE)
    assert status == 400
    assert "managed by zone control planes" in body["details"]
    assert (await api.get("/meshes/default/dataplanes/web-1"))[0] == 404
    status, body = await api.put(
        "/zoneingresses/ingress-1", {"networking": {"address": "10.0.0.5", "port": 10001}}
    )
    assert status == 400
    assert "managed by zone control planes" in body["details"]
    status, _ = await api.put("/meshes/default/meshtrafficpermissions/allow-all", PERMISSION)
    assert status == 201


async def test_global_serves_zone_copies_by_zone(start_api, store) -> None:
    api = await start_api(mode="global")
    await api.ok("PUT", "/meshes/default", {"type": "Mesh", "name": "default"})
    await store.upsert(_from_zone(DATAPLANE, "east", "10.0.1.1"))
    await store.upsert(_from_zone(DATAPLANE, "west", "10.0.2.1"))

    status, body = await api.get("/meshes/default/dataplanes/web-1")
    assert status == 400
    assert [p["field"] for p in body["invalid_parameters"]] == ["zone"]
    assert "east, west" in body["details"]

    status, east = await api.get("/meshes/default/dataplanes/web-1?zone=east")
    assert status == 200
    assert east["networking"]["address"] == "10.0.1.1"
    status, _ = await api.get("/meshes/default/dataplanes/web-1?zone=north")
    assert status == 404

    status, page = await api.get("/dataplanes?zone=west")
    assert [i["networking"]["address"] for i in page["items"]] == ["10.0.2.1"]
    status, page = await api.get("/meshes/default/dataplanes")
    assert page["total"] == 2

    await store.delete(_from_zone(DATAPLANE, "west", "10.0.2.1").key)
    status, only = await api.get("/meshes/default/dataplanes/web-1")
    assert status == 200
    assert only["networking"]["address"] == "10.0.1.1"


async def test_zone_copies_always_show_their_zone_label(start_api, store) -> None:
    api = await start_api(mode="global")
    await api.ok("PUT", "/meshes/default", {"type": "Mesh", "name": "default"})
    resource = parse_resource(DATAPLANE | {"labels": {"team": "web", "kuma.io/zone": "elsewhere"}})
    # Keyed by zone east, with a label that says otherwise: the key is the identity and wins.
    await store.upsert(
        msgspec.structs.replace(resource, meta=msgspec.structs.replace(resource.meta, zone="east"))
    )
    status, page = await api.get("/meshes/default/dataplanes")
    assert status == 200
    assert [item["labels"] for item in page["items"]] == [{"team": "web", "kuma.io/zone": "east"}]
    status, one = await api.get("/meshes/default/dataplanes/web-1")
    assert status == 200
    assert one["labels"] == {"team": "web", "kuma.io/zone": "east"}
    # A resource created on this control plane has no zone of origin and gets no label.
    await api.ok("PUT", "/zones/east", {"type": "Zone", "name": "east"})
    assert "labels" not in (await api.get("/zones/east"))[1]
