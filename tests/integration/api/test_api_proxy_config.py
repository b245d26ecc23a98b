"""``GET /meshes/{mesh}/dataplanes/{name}/_config``: the ProxyConfig a zone or standalone CP computes from
its store for a dataplane, with the notes; the global refuses it, naming the dataplane's zone."""

from __future__ import annotations

from typing import Any

import msgspec

from kmesh.model import parse_resource
from kmesh.proxyconfig import ProxyConfig

CONFIG_PATH = "/meshes/default/dataplanes/web-1/_config"
MTLS = {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]}


def _dataplane(name: str, address: str, service: str, port: int, **networking: Any) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "name": name,
        "mesh": "default",
        "networking": {
            "address": address,
            "inbound": [{"port": port, "tags": {"kuma.io/service": service, "kuma.io/protocol": "http"}}],
            **networking,
        },
    }


WEB = _dataplane(
    "web-1", "10.0.0.1", "web", 8080, outbound=[{"port": 10001, "tags": {"kuma.io/service": "backend"}}]
)
BACKEND = _dataplane("backend-1", "10.0.0.2", "backend", 9090)
# Another zone's ingress as the global relays it: two healthy backend instances behind it.
REMOTE_INGRESS = {
    "type": "ZoneIngress",
    "name": "ingress-east",
    "labels": {"kuma.io/zone": "east", "kuma.io/origin": "zone"},
    "zone": "east",
    "networking": {
        "address": "10.1.0.9",
        "port": 10001,
        "advertisedAddress": "203.0.113.9",
        "advertisedPort": 443,
    },
    "availableServices": [{"mesh": "default", "tags": {"kuma.io/service": "backend"}, "instances": 2}],
}


def _from_zone(doc: dict[str, Any], zone: str):
    resource = parse_resource(doc)
    labels = dict(resource.meta.labels) | {"kuma.io/zone": zone, "kuma.io/origin": "zone"}
    return msgspec.structs.replace(
        resource, meta=msgspec.structs.replace(resource.meta, zone=zone, labels=labels)
    )


async def _seed(api, store, mesh: dict[str, Any]) -> None:
    """The mesh as the global would have synced it (a zone CP refuses a PUT of it), then the dataplanes."""
    await store.upsert(parse_resource({"type": "Mesh", "name": "default", **mesh}))
    await api.ok("PUT", "/meshes/default/dataplanes/web-1", WEB)
    await api.ok("PUT", "/meshes/default/dataplanes/backend-1", BACKEND)


async def test_standalone_config_has_inbound_outbound_and_local_endpoint(start_api, store) -> None:
    api = await start_api()
    await _seed(api, store, {})
    status, body = await api.get(CONFIG_PATH)
    assert status == 200, body
    config = msgspec.convert(body["config"], ProxyConfig)
    assert (config.proxy_type, config.mesh, config.name, config.zone) == (
        "sidecar",
        "default",
        "web-1",
        "default",
    )
    assert [(i.port, i.tags["kuma.io/service"]) for i in config.inbounds] == [(8080, "web")]
    assert [(o.port, o.service) for o in config.outbounds] == [(10001, "backend")]
    (cluster,) = config.clusters
    assert [(e.address, e.port, e.via) for e in cluster.endpoints] == [("10.0.0.2", 9090, "local")]
    assert body["notes"] == config.notes
    assert config.mtls_enabled is False
    assert any("need mTLS" in note and "mesh default" in note for note in body["notes"])


async def test_without_mtls_remote_zones_are_left_out_and_the_notes_say_why(start_api, store) -> None:
    api = await start_api(mode="zone", zone="west")
    await _seed(api, store, {})
    await store.upsert(_from_zone(REMOTE_INGRESS, "east"))
    status, body = await api.get(CONFIG_PATH)
    assert status == 200, body
    assert body["config"]["zone"] == "west"
    endpoints = body["config"]["clusters"][0]["endpoints"]
    assert {e["via"] for e in endpoints} == {"local"}
    assert any("zone(s) east left out" in note and "mTLS" in note for note in body["notes"]), body["notes"]


async def test_with_mtls_the_remote_ingress_is_an_endpoint_weighted_by_its_instances(
    start_api, store
) -> None:
    api = await start_api(mode="zone", zone="west")
    await _seed(api, store, {"mtls": MTLS})
    await store.upsert(_from_zone(REMOTE_INGRESS, "east"))
    status, body = await api.get(CONFIG_PATH)
    assert status == 200, body
    config = msgspec.convert(body["config"], ProxyConfig)
    assert config.mtls_enabled is True
    assert config.identity == "spiffe://default/web"
    remote = [e for e in config.clusters[0].endpoints if e.via == "ingress"]
    assert [(e.address, e.port, e.zone) for e in remote] == [("203.0.113.9", 443, "east")]
    local = [e for e in config.clusters[0].endpoints if e.via == "local"]
    assert remote[0].weight == 2 * local[0].weight
    assert not any("need mTLS" in note for note in body["notes"])


async def test_config_follows_the_store(start_api, store) -> None:
    api = await start_api()
    await _seed(api, store, {})
    _, before = await api.get(CONFIG_PATH)
    await api.ok("DELETE", "/meshes/default/dataplanes/backend-1")
    _, after = await api.get(CONFIG_PATH)
    assert after["config"]["clusters"][0]["endpoints"] == []
    assert after["config"]["version"] != before["config"]["version"]


async def test_missing_dataplane_or_mesh_is_404(start_api, store) -> None:
    api = await start_api()
    await _seed(api, store, {})
    status, body = await api.get("/meshes/default/dataplanes/nope-1/_config")
    assert status == 404
    assert "Dataplane 'nope-1' not found in mesh 'default'" in body["details"]
    status, body = await api.get("/meshes/other/dataplanes/web-1/_config")
    assert status == 404
    assert "mesh 'other' not found" in body["details"]


async def test_dataplane_of_another_zone_is_refused_with_the_reason(start_api, store) -> None:
    api = await start_api(mode="zone", zone="west")
    await _seed(api, store, {})
    other = WEB | {"name": "web-2", "labels": {"kuma.io/zone": "east"}}
    await api.ok("PUT", "/meshes/default/dataplanes/web-2", other)
    status, body = await api.get("/meshes/default/dataplanes/web-2/_config")
    assert status == 400
    assert "zone 'west'" in body["details"]
    assert [p["field"] for p in body["invalid_parameters"]] == ["name"]


async def test_global_names_the_zone_that_computes_the_config(start_api, store) -> None:
    api = await start_api(mode="global")
    await api.ok("PUT", "/meshes/default", {"type": "Mesh", "name": "default"})
    await store.upsert(_from_zone(WEB, "east"))
    status, body = await api.get(CONFIG_PATH)
    assert status == 400
    assert body["title"] == "Proxy config is not computed here"
    assert "computed by the dataplane's zone control plane" in body["details"]
    assert "in zone 'east'" in body["details"]
    assert [p["field"] for p in body["invalid_parameters"]] == ["zone"]

    await store.upsert(_from_zone(WEB, "north"))
    _, body = await api.get(CONFIG_PATH)
    assert "in zones 'east', 'north'" in body["details"]

    status, body = await api.get("/meshes/default/dataplanes/nope-1/_config")
    assert status == 404
    assert "zone control plane" in body["details"]
    status, _ = await api.get("/meshes/other/dataplanes/web-1/_config")
    assert status == 404


async def test_only_get_is_allowed(start_api, store) -> None:
    api = await start_api()
    await _seed(api, store, {})
    status, body = await api.call("PUT", CONFIG_PATH, json={})
    assert status == 405
    assert "GET" in body["details"]
