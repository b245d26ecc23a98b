"""The fixed endpoints (``/``, ``/global-insight``, ``/config``), request counters and the error edge."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from kmesh.api import ApiServer
from kmesh.api._middleware import error_middleware
from kmesh.errors import ConfigError
from kmesh.model import parse_resource


async def test_index(start_api) -> None:
    api = await start_api(mode="zone", zone="east")
    status, body = await api.get("/")
    assert status == 200
    assert body["hostname"] == socket.gethostname()
    assert (body["tagline"], body["product"], body["basedOnKuma"]) == ("kmesh", "kmesh", "2.x")
    assert (body["mode"], body["zone"], body["instanceId"]) == ("zone", "east", "test-zone")
    assert body["version"]
    standalone = await start_api()
    _, body = await standalone.get("/")
    assert body["mode"] == "standalone"
    assert "zone" not in body


async def test_config_dump(start_api) -> None:
    dump = {"mode": "standalone", "api_server": {"port": 5681}, "store": {"type": "memory"}}
    api = await start_api(config_dump=dump)
    assert await api.get("/config") == (200, dump)
    bare = await start_api()
    assert await bare.get("/config") == (200, {})


async def _insight(store, type_name: str, name: str, *, mesh: str = "", disconnected: bool) -> None:
    """Store an insight with one subscription, as a control plane records a connection (the API refuses
    insight writes, so this goes to the store directly)."""
    now = datetime.now(UTC).isoformat()
    # A zone's KDS subscription names the global it connected to; a proxy's names its zone CP.
    peer = {"globalInstanceId": "g-1"} if type_name == "ZoneInsight" else {"controlPlaneInstanceId": "cp-1"}
    subscription: dict[str, Any] = {"id": "s1", "connectTime": now, **peer}
    if disconnected:
        subscription["disconnectTime"] = now
    doc: dict[str, Any] = {"type": type_name, "name": name, "subscriptions": [subscription]}
    if mesh:
        doc["mesh"] = mesh
    await store.upsert(parse_resource(doc))


async def test_global_insight_counts(api, store) -> None:
    await api.ok("PUT", "/meshes/prod", {"type": "Mesh", "name": "prod"})
    for name in ("web-1", "web-2", "web-3"):
        doc = {
            "type": "Dataplane",
            "name": name,
            "mesh": "default",
            "networking": {
                "address": "10.0.0.1",
                "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}],
            },
        }
        await api.ok("PUT", f"/meshes/default/dataplanes/{name}", doc)
    policy_spec: dict[str, Any] = {
        "targetRef": {"kind": "Mesh"},
        "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
    }
    for mesh in ("default", "prod"):
        doc = {"type": "MeshTrafficPermission", "name": "allow", "mesh": mesh, "spec": policy_spec}
        await api.ok("PUT", f"/meshes/{mesh}/meshtrafficpermissions/allow", doc)
    await api.ok("PUT", "/zones/east", {"type": "Zone", "name": "east"})
    await api.ok("PUT", "/zones/west", {"type": "Zone", "name": "west", "enabled": False})
    await api.ok("PUT", "/zones/north", {"type": "Zone", "name": "north"})
    ingress = {
        "type": "ZoneIngress",
        "name": "ingress-1",
        "networking": {"address": "10.0.0.5", "port": 10001},
    }
    await api.ok("PUT", "/zoneingresses/ingress-1", ingress)

    await _insight(store, "DataplaneInsight", "web-1", mesh="default", disconnected=False)
    await _insight(store, "DataplaneInsight", "web-2", mesh="default", disconnected=True)
    await _insight(store, "ZoneInsight", "east", disconnected=False)
    await _insight(store, "ZoneInsight", "west", disconnected=False)  # connected but disabled: offline
    await _insight(store, "ZoneInsight", "north", disconnected=True)

    status, insight = await api.get("/global-insight")
    assert status == 200
    assert insight["meshes"] == {"total": 2}
    assert insight["dataplanes"] == {"online": 1, "offline": 2, "total": 3}
    assert insight["policies"] == {"total": 2}
    assert insight["zones"]["controlPlanes"] == {"online": 1, "offline": 2, "total": 3}
    assert insight["zones"]["zoneIngresses"]["total"] == 1
    assert insight["zones"]["zoneEgresses"]["total"] == 0
    assert insight["resources"]["Dataplane"] == {"total": 3}
    assert insight["resources"]["MeshTrafficPermission"] == {"total": 2}
    assert insight["resources"]["DataplaneInsight"] == {"total": 2}
    assert datetime.fromisoformat(insight["createdAt"]).tzinfo is not None


async def test_stats_count_by_status_class(start_api) -> None:
    api = await start_api()
    await api.get("/")
    await api.get("/meshes/nope")
    await api.get("/meshes")
    assert api.server.stats() == {"total": 3, "1xx": 0, "2xx": 2, "3xx": 0, "4xx": 1, "5xx": 0}


async def test_port_zero_binds_a_real_port(start_api) -> None:
    api = await start_api()
    assert api.server.port > 0
    assert api.server.url == f"http://127.0.0.1:{api.server.port}"


async def test_stop_closes_the_port(store) -> None:
    server = ApiServer(store, port=0, instance_id="t")
    await server.start()
    url = server.url
    await server.stop()
    await server.stop()  # idempotent
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)


def test_zone_mode_needs_a_zone(store) -> None:
    with pytest.raises(ConfigError):
        ApiServer(store, mode="zone", instance_id="t")
    with pytest.raises(ConfigError):
        ApiServer(store, mode="remote", instance_id="t")


async def test_unexpected_error_is_a_generic_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail 42")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.ERROR, logger="kmesh.api"):
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/broken") as resp,
            ):
                assert resp.status == 500
                body = orjson.loads(await resp.read())
    finally:
        await runner.cleanup()
    assert "internal detail 42" not in orjson.dumps(body).decode()
    assert body["title"] == "Internal server error"
    [record] = [r for r in caplog.records if r.name == "kmesh.api"]
    assert record.exc_info is not None
    assert "internal detail 42" in str(record.exc_info[1])


async def test_debug_access_log_line(start_api, caplog: pytest.LogCaptureFixture) -> None:
    api = await start_api()
    with caplog.at_level(logging.DEBUG, logger="kmesh.api"):
        await api.get("/meshes")
    [record] = [r for r in caplog.records if r.getMessage() == "api request"]
    fields = {k: getattr(record, k) for k in ("method", "path", "status")}
    assert fields == {"method": "GET", "path": "/meshes", "status": 200}
    assert getattr(record, "duration_ms") >= 0  # noqa: B009 - set through logging's extra
