"""The delete guard: a global refuses to delete a Zone whose CP is connected, deletes a disconnected one with
everything the zone sent (the store's owner cascade), and keeps Zone PUT open to disable a zone."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from kmesh.errors import FieldViolation, StoreUnavailable
from kmesh.model import ResourceKey, new_resource, parse_resource
from kmesh.model.types.zone import KDSSubscription, ZoneInsightSpec

STILL_CONNECTED = "unable to delete Zone, Zone CP is still connected, please shut it down first"
ZONE = ResourceKey("Zone", "east")


class ZoneGuard:
    """Refuses to delete a Zone named in ``connected``, as the global's guard does; records every ask."""

    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.asked: list[ResourceKey] = []

    async def __call__(self, key: ResourceKey) -> FieldViolation | None:
        self.asked.append(key)
        if key.type == "Zone" and key.name in self.connected:
            return FieldViolation("zone", STILL_CONNECTED)
        return None


def _owned_by_zone(resource, zone: str):
    """``resource`` as the global stores what zone ``zone`` sent: pinned to the zone, owned by its Zone."""
    labels = dict(resource.meta.labels) | {"kuma.io/zone": zone, "kuma.io/origin": "zone"}
    meta = msgspec.structs.replace(resource.meta, zone=zone, labels=labels, owner=ResourceKey("Zone", zone))
    return msgspec.structs.replace(resource, meta=meta)


async def _seed_zone(api, store) -> None:
    """Zone east (created through the API), its insight and a dataplane it sent (through the store)."""
    await api.ok("PUT", "/meshes/default", {"type": "Mesh", "name": "default"})
    await api.ok("PUT", "/zones/east", {"type": "Zone", "name": "east"})
    subscription = KDSSubscription(
        id="s1", global_instance_id="global-1", connect_time=datetime(2024, 5, 1, tzinfo=UTC)
    )
    insight = new_resource("ZoneInsight", "east", ZoneInsightSpec(subscriptions=[subscription]))
    await store.upsert(
        msgspec.structs.replace(insight, meta=msgspec.structs.replace(insight.meta, owner=ZONE))
    )
    dataplane = parse_resource(
        {
            "type": "Dataplane",
            "name": "web-1",
            "mesh": "default",
            "networking": {
                "address": "10.0.1.1",
                "inbound": [{"port": 80, "tags": {"kuma.io/service": "web"}}],
            },
        }
    )
    await store.upsert(_owned_by_zone(dataplane, "east"))


@pytest.fixture
async def guarded(start_api, store):
    guard = ZoneGuard()
    api = await start_api(mode="global", delete_guard=guard)
    await _seed_zone(api, store)
    return api, guard


async def test_connected_zone_is_not_deleted(guarded) -> None:
    api, guard = guarded
    guard.connected.add("east")
    status, body = await api.delete("/zones/east")
    assert status == 400
    assert body == {
        "title": "could not delete",
        "details": f"zone: {STILL_CONNECTED}",
        "invalid_parameters": [{"field": "zone", "reason": STILL_CONNECTED}],
    }
    assert guard.asked == [ZONE]
    assert (await api.get("/zones/east"))[0] == 200
    assert (await api.get("/zone-insights/east"))[0] == 200
    assert (await api.get("/meshes/default/dataplanes/web-1?zone=east"))[0] == 200


async def test_disconnected_zone_is_deleted_with_what_it_sent(guarded) -> None:
    api, guard = guarded
    guard.connected.add("east")
    assert (await api.delete("/zones/east"))[0] == 400
    guard.connected.discard("east")
    status, body = await api.delete("/zones/east")
    assert status == 200, body
    assert guard.asked == [ZONE, ZONE]
    assert (await api.get("/zones/east"))[0] == 404
    assert (await api.get("/zone-insights/east"))[0] == 404
    status, page = await api.get("/dataplanes?zone=east")
    assert status == 200
    assert page["total"] == 0


async def test_disabling_a_connected_zone_is_allowed(guarded) -> None:
    api, guard = guarded
    guard.connected.add("east")
    status, stored = await api.put("/zones/east", {"type": "Zone", "name": "east", "enabled": False})
    assert status == 200
    assert stored["enabled"] is False
    assert (await api.get("/zones/east"))[1]["enabled"] is False


async def test_guard_is_asked_for_every_type_with_the_resolved_key(guarded) -> None:
    api, guard = guarded
    await api.ok("PUT", "/meshes/other", {"type": "Mesh", "name": "other"})
    assert (await api.delete("/meshes/other"))[0] == 200
    assert guard.asked == [ResourceKey("Mesh", "other")]


async def test_missing_resource_is_404_before_the_guard(guarded) -> None:
    api, guard = guarded
    status, _ = await api.delete("/zones/nowhere")
    assert status == 404
    assert guard.asked == []


async def test_guard_failure_deletes_nothing(start_api, store) -> None:
    async def broken(key: ResourceKey) -> FieldViolation | None:
        raise StoreUnavailable("zone connections cannot be read")

    api = await start_api(mode="global", delete_guard=broken)
    await _seed_zone(api, store)
    status, body = await api.delete("/zones/east")
    assert status == 503
    assert body["title"] == "Store unavailable"
    assert (await api.get("/zones/east"))[0] == 200
