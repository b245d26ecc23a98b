"""Resource endpoints against a real server: create, update, get, list, page, filter, delete, cascade."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from kmesh.model import all_descriptors


def dataplane(name: str, *, service: str = "web", labels: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "Dataplane",
        "name": name,
        "mesh": "default",
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": service}}],
        },
    }
    if labels:
        doc["labels"] = labels
    return doc


def permission(name: str, *, mesh: str = "default", action: str = "Allow") -> dict[str, Any]:
    return {
        "type": "MeshTrafficPermission",
        "name": name,
        "mesh": mesh,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": action}}],
        },
    }


async def test_mesh_create_update_get_delete(api) -> None:
    status, created = await api.put("/meshes/prod", {"type": "Mesh", "name": "prod"})
    assert status == 201
    assert (created["type"], created["name"]) == ("Mesh", "prod")
    assert created["creationTime"]

    status, updated = await api.put("/meshes/prod", {"type": "Mesh", "name": "prod", "labels": {"team": "a"}})
    assert status == 200
    assert updated["labels"]["team"] == "a"
    assert updated["creationTime"] == created["creationTime"]

    status, fetched = await api.get("/meshes/prod")
    assert (status, fetched) == (200, updated)

    status, listing = await api.get("/meshes")
    assert status == 200
    assert [m["name"] for m in listing["items"]] == ["default", "prod"]
    assert (listing["total"], listing["next"]) == (2, None)

    assert await api.delete("/meshes/prod") == (200, {})
    status, body = await api.get("/meshes/prod")
    assert status == 404
    assert "prod" in body["details"]
    status, body = await api.delete("/meshes/prod")
    assert status == 404


async def test_type_name_and_mesh_are_filled_from_the_url(api) -> None:
    doc = permission("allow-all")
    for field in ("type", "name", "mesh"):
        del doc[field]
    status, stored = await api.put("/meshes/default/meshtrafficpermissions/allow-all", doc)
    assert status == 201
    assert (stored["type"], stored["name"], stored["mesh"]) == (
        "MeshTrafficPermission",
        "allow-all",
        "default",
    )
    assert stored["spec"]["from"][0]["default"]["action"] == "Allow"


async def test_yaml_body_is_accepted(api) -> None:
    body = "type: Dataplane\nname: web-1\nmesh: default\nnetworking:\n  address: 10.0.0.9\n  inbound:\n"
    body += "  - port: 8080\n    tags:\n      kuma.io/service: web\n"
    status, stored = await api.call(
        "PUT", "/meshes/default/dataplanes/web-1", data=body, headers={"Content-Type": "application/yaml"}
    )
    assert status == 201
    assert stored["networking"]["address"] == "10.0.0.9"


async def test_update_replaces_the_spec(api) -> None:
    path = "/meshes/default/meshtrafficpermissions/p"
    assert (await api.put(path, permission("p")))[0] == 201
    status, stored = await api.put(path, permission("p", action="Deny"))
    assert status == 200
    assert stored["spec"]["from"][0]["default"]["action"] == "Deny"
    assert (await api.get(path))[1]["spec"]["from"][0]["default"]["action"] == "Deny"


async def test_pagination_next_link_walks_every_page(api) -> None:
    names = [f"web-{i:02d}" for i in range(7)]
    for name in names:
        await api.ok("PUT", f"/meshes/default/dataplanes/{name}", dataplane(name))
    seen: list[str] = []
    url: str | None = "/meshes/default/dataplanes?size=3"
    pages = 0
    while url is not None:
        status, page = await api.get(url)
        assert status == 200
        assert page["total"] == 7
        assert len(page["items"]) <= 3
        seen += [item["name"] for item in page["items"]]
        url = page["next"]
        if url is not None:
            assert URL(url).is_absolute()
        pages += 1
    assert seen == names
    assert pages == 3

    status, page = await api.get("/meshes/default/dataplanes?size=2&offset=6")
    assert [i["name"] for i in page["items"]] == ["web-06"]
    assert page["next"] is None


async def test_label_and_name_filters(api) -> None:
    await api.ok(
        "PUT", "/meshes/default/dataplanes/web-1", dataplane("web-1", labels={"env": "prod", "t": "a"})
    )
    await api.ok(
        "PUT", "/meshes/default/dataplanes/web-2", dataplane("web-2", labels={"env": "dev", "t": "a"})
    )
    await api.ok(
        "PUT", "/meshes/default/dataplanes/db-1", dataplane("db-1", service="db", labels={"env": "prod"})
    )

    async def names(query: str) -> list[str]:
        status, page = await api.get(f"/meshes/default/dataplanes?{query}")
        assert status == 200, page
        assert page["total"] == len(page["items"])
        return [item["name"] for item in page["items"]]

    assert await names("labels.env=prod") == ["db-1", "web-1"]
    assert await names("labels.env=prod&labels.t=a") == ["web-1"]
    assert await names("filter[labels.t]=a") == ["web-1", "web-2"]
    assert await names("name=web") == ["web-1", "web-2"]
    assert await names("filter[name]=db") == ["db-1"]
    assert await names("name=web&labels.env=dev") == ["web-2"]
    assert await names("labels.env=staging") == []


async def test_cross_mesh_listing(api) -> None:
    await api.ok("PUT", "/meshes/other", {"type": "Mesh", "name": "other"})
    await api.ok("PUT", "/meshes/default/meshtrafficpermissions/a", permission("a"))
    await api.ok("PUT", "/meshes/other/meshtrafficpermissions/b", permission("b", mesh="other"))
    status, page = await api.get("/meshtrafficpermissions")
    assert status == 200
    assert [(i["mesh"], i["name"]) for i in page["items"]] == [("default", "a"), ("other", "b")]
    status, page = await api.get("/meshes/other/meshtrafficpermissions")
    assert [(i["mesh"], i["name"]) for i in page["items"]] == [("other", "b")]


async def test_delete_then_404(api) -> None:
    path = "/meshes/default/dataplanes/web-1"
    await api.ok("PUT", path, dataplane("web-1"))
    assert await api.delete(path) == (200, {})
    status, body = await api.get(path)
    assert status == 404
    assert set(body) >= {"title", "details"}
    assert (await api.delete(path))[0] == 404


async def test_mesh_delete_cascades(api) -> None:
    await api.ok("PUT", "/meshes/doomed", {"type": "Mesh", "name": "doomed"})
    await api.ok("PUT", "/meshes/doomed/meshtrafficpermissions/p", permission("p", mesh="doomed"))
    doc = dataplane("web-1") | {"mesh": "doomed"}
    await api.ok("PUT", "/meshes/doomed/dataplanes/web-1", doc)
    await api.ok("DELETE", "/meshes/doomed")
    status, _ = await api.get("/meshes/doomed/dataplanes/web-1")
    assert status == 404
    status, page = await api.get("/dataplanes")
    assert page["total"] == 0
    status, page = await api.get("/meshtrafficpermissions")
    assert page["total"] == 0


async def test_global_scoped_types_have_top_level_routes(api) -> None:
    status, zone = await api.put("/zones/east", {"type": "Zone", "name": "east"})
    assert status == 201
    assert zone["name"] == "east"
    status, page = await api.get("/zones")
    assert [z["name"] for z in page["items"]] == ["east"]
    status, page = await api.get("/zone-insights")
    assert (status, page["total"]) == (200, 0)
    assert (await api.delete("/zones/east"))[0] == 200
    status, _ = await api.get("/meshes/default/zones")
    assert status == 404


async def test_a_fetched_document_puts_back_unchanged(api) -> None:
    path = "/meshes/default/dataplanes/web-1"
    _, created = await api.put(path, dataplane("web-1", labels={"env": "prod"}))
    status, fetched = await api.get(path)
    status, stored = await api.put(path, fetched)
    assert status == 200
    assert stored["creationTime"] == created["creationTime"]
    assert {k: v for k, v in stored.items() if k != "modificationTime"} == {
        k: v for k, v in fetched.items() if k != "modificationTime"
    }


@pytest.mark.parametrize("desc", list(all_descriptors()), ids=lambda d: d.name)
async def test_every_collection_lists_and_every_item_route_answers(api, desc) -> None:
    collection = f"/meshes/default/{desc.path}" if desc.mesh_scoped else f"/{desc.path}"
    listings = [collection, f"/{desc.path}"] if desc.mesh_scoped else [collection]
    expected = 1 if desc.name == "Mesh" else 0  # the fixture's mesh "default"
    for path in listings:
        status, page = await api.get(path)
        assert status == 200, page
        assert (page["total"], len(page["items"]), page["next"]) == (expected, expected, None)
    status, body = await api.get(f"{collection}/missing")
    assert status == 404
    assert f"{desc.name} 'missing' not found" in body["details"]
