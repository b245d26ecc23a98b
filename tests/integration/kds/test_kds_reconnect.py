"""Reconnection: after the global is stopped and started again on the same port, zones reconnect and both
sides converge, only the differences flow, and unchanged resources are not rewritten on either side."""

from __future__ import annotations

from pathlib import Path

from kmesh.kds import KdsGlobalServer, KdsZoneClient
from kmesh.model import Resource, ResourceKey
from kmesh.store import Create, Delete, MemoryStore, ResourceStore, SqliteStore

from .support import Tls, dataplane, global_server, ingress, keys, mesh, policy, running, until, zone_client

MTP = "MeshTrafficPermission"
Snapshot = dict[ResourceKey, tuple[int, object]]


async def _snapshot(store: ResourceStore, *types: str) -> Snapshot:
    out: Snapshot = {}
    for type_ in types:
        for resource in (await store.list(type_)).items:
            out[resource.key] = (resource.meta.version, resource.meta.modification_time)
    return out


async def test_reconnect_converges_and_leaves_unchanged_resources_alone(tls: Tls, tmp_path: Path) -> None:
    glob = SqliteStore(tmp_path / "global.db")
    zone_a, zone_b = MemoryStore(), SqliteStore(tmp_path / "zone-b.db")
    await glob.commit([Create(mesh()), *(Create(policy(f"p-{i}")) for i in range(20))])
    server = global_server(glob, tls)
    await server.start()
    port = server.port
    client_a = zone_client(zone_a, "zone-a", tls, port)
    client_b = zone_client(zone_b, "zone-b", tls, port)
    try:
        async with running(client_a, client_b):
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: _count_is(z, MTP, 20), "the policies in the zone")
            await zone_a.commit([Create(dataplane(f"a-{i}")) for i in range(5)])
            await zone_a.create(ingress("ingress", address="192.0.2.1"))
            await zone_b.commit([Create(dataplane(f"b-{i}")) for i in range(5)])
            await until(lambda: _count_is(glob, "Dataplane", 10), "the dataplanes on the global")
            await until(lambda: _count_is(zone_b, "ZoneIngress", 1), "zone-a's ingress in zone-b")

            await server.stop()
            await until(lambda: not (client_a.connected or client_b.connected), "both zones disconnected")
            before = {
                "global": await _snapshot(glob, "Dataplane", "ZoneIngress"),
                "zone-a": await _snapshot(zone_a, "Mesh", MTP),
                "zone-b": await _snapshot(zone_b, "Mesh", MTP, "ZoneIngress"),
            }
            # While the link is down each side changes a little (DESIGN.md failure mode 3).
            await glob.commit([Delete(ResourceKey(MTP, "p-0", "default")), Create(policy("p-new"))])
            await zone_a.create(dataplane("a-new"))

            server = global_server(glob, tls, port=port)
            await server.start()
            await until(lambda: client_a.connected and client_b.connected, "both zones reconnected")
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: _has_policy(z, "p-new"), "the new policy in the zone")
                assert await _count_is(zone, MTP, 20)
            await until(lambda: _count_is(glob, "Dataplane", 11), "the new dataplane on the global")
            await until(lambda: _initial_syncs_done(server, client_a, client_b), "every initial sync")

            after = {
                "global": await _snapshot(glob, "Dataplane", "ZoneIngress"),
                "zone-a": await _snapshot(zone_a, "Mesh", MTP),
                "zone-b": await _snapshot(zone_b, "Mesh", MTP, "ZoneIngress"),
            }
            for side, old in before.items():
                unchanged = {k: v for k, v in old.items() if k.name not in ("p-0",)}
                assert {k: after[side][k] for k in unchanged} == unchanged, side

            # Only the differences travelled on the new connections.
            stats_a = server.sync_stats("zone-a")
            assert stats_a is not None
            assert (stats_a[MTP].records_sent, stats_a[MTP].removals_sent) == (1, 1)
            assert stats_a.get("Mesh") is not None
            assert stats_a["Mesh"].records_sent == 0
            zone_side = client_a.sync_stats()
            assert zone_side is not None
            assert (zone_side["Dataplane"].records_sent, zone_side["Dataplane"].removals_sent) == (1, 0)
            assert zone_side["ZoneIngress"].records_sent == 0
            assert await keys(zone_b, "ZoneIngress") == {ResourceKey("ZoneIngress", "ingress", "", "zone-a")}
    finally:
        await server.stop()
        await zone_b.close()
        await glob.close()


def _initial_syncs_done(server: KdsGlobalServer, *clients: KdsZoneClient) -> bool:
    """Each side received the last chunk of the answer to each of its subscriptions."""
    for client in clients:
        sync = client.sync
        if sync is None or not {"Mesh", MTP, "ZoneIngress"} <= sync.received_complete:
            return False
    for zone in ("zone-a", "zone-b"):
        sync = server.sync(zone)
        if sync is None or not {"Dataplane", "ZoneIngress"} <= sync.received_complete:
            return False
    return True


async def _count_is(store: ResourceStore, type_: str, expected: int) -> bool:
    return (await store.list(type_, limit=1)).total == expected


async def _has_policy(store: ResourceStore, name: str) -> bool:
    found: list[Resource] = (await store.list(MTP, name_prefix=name)).items
    return any(r.meta.name == name for r in found)
