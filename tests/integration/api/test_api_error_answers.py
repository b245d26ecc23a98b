"""Every error the API gives is JSON with the right status and names what was wrong."""

from __future__ import annotations

from typing import Any

import pytest


def permission(name: str = "p") -> dict[str, Any]:
    return {
        "type": "MeshTrafficPermission",
        "name": name,
        "mesh": "default",
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
        },
    }


def fields(body: dict[str, Any]) -> list[str]:
    return [p["field"] for p in body["invalid_parameters"]]


PATH = "/meshes/default/meshtrafficpermissions/p"


async def test_unknown_field_names_the_field(api) -> None:
    doc = permission()
    doc["spec"]["colour"] = "blue"
    status, body = await api.put(PATH, doc)
    assert status == 400
    assert any("colour" in field for field in fields(body)), body
    assert (await api.get(PATH))[0] == 404


async def test_wrong_type_names_the_field(api) -> None:
    doc = permission()
    doc["spec"]["from"][0]["default"]["action"] = 42
    status, body = await api.put(PATH, doc)
    assert status == 400
    assert any("action" in field for field in fields(body)), body


async def test_missing_required_field(api) -> None:
    doc = {"type": "Dataplane", "name": "web-1", "mesh": "default", "networking": {"inbound": []}}
    status, body = await api.put("/meshes/default/dataplanes/web-1", doc)
    assert status == 400
    assert any("address" in field for field in fields(body)), body


@pytest.mark.parametrize("raw", [b"{", b"", b"[]", b'"text"'])
async def test_broken_body(api, raw: bytes) -> None:
    status, body = await api.call("PUT", PATH, data=raw, headers={"Content-Type": "application/json"})
    assert status == 400
    assert fields(body) == ["body"]


@pytest.mark.parametrize(("field", "value"), [("name", "other"), ("mesh", "prod"), ("type", "MeshRetry")])
async def test_body_that_names_another_resource(api, field: str, value: str) -> None:
    doc = permission() | {field: value}
    status, body = await api.put(PATH, doc)
    assert status == 400
    assert fields(body) == [field]
    assert value in body["details"]


async def test_read_only_type_refuses_writes_with_405(api) -> None:
    doc = {"type": "DataplaneInsight", "name": "web-1", "mesh": "default"}
    status, body = await api.put("/meshes/default/dataplane-insights/web-1", doc)
    assert status == 405
    assert "read-only" in body["details"]
    status, body = await api.delete("/meshes/default/dataplane-insights/web-1")
    assert status == 405


async def test_unknown_paths_are_json_404(api) -> None:
    status, body = await api.get("/meshes/default/no-such-things")
    assert status == 404
    assert "/meshes/default/no-such-things" in body["details"]
    status, body = await api.get("/nothing-here")
    assert status == 404


async def test_unknown_mesh_is_named(api) -> None:
    status, body = await api.get("/meshes/nope/meshtrafficpermissions")
    assert status == 404
    assert "nope" in body["details"]
    status, body = await api.get("/meshes/nope/meshtrafficpermissions/p")
    assert status == 404
    assert "mesh 'nope'" in body["details"]


async def test_put_into_missing_mesh_is_400_on_mesh(api) -> None:
    doc = permission() | {"mesh": "nope"}
    status, body = await api.put("/meshes/nope/meshtrafficpermissions/p", doc)
    assert status == 400
    assert fields(body) == ["mesh"]


async def test_method_not_allowed(api) -> None:
    status, body = await api.call("POST", "/meshes")
    assert status == 405
    assert "POST" in body["details"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("size=abc", "size"), ("offset=-1", "offset"), ("filter[colour]=x", "filter[colour]")],
)
async def test_bad_query_parameter(api, query: str, field: str) -> None:
    status, body = await api.get(f"/meshes/default/meshtrafficpermissions?{query}")
    assert status == 400
    assert fields(body) == [field]


async def test_closed_store_is_503(api, store) -> None:
    await store.close()
    status, body = await api.get("/meshes")
    assert status == 503
    assert body["title"] == "Store unavailable"
