"""What flows where: global resources down to every zone, zone resources up to the global pinned to their
zone, ingresses on to the other zones, and invalid records refused by name while the rest apply."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kmesh.kds import KdsGlobalServer, KdsZoneClient, SyncSettings
from kmesh.model import LABEL_ORIGIN, LABEL_ZONE, Resource, ResourceKey
from kmesh.model.types.dataplane import DataplaneNetworking, DataplaneSpec, Inbound
from kmesh.store import Create, Delete, MemoryStore, SqliteStore

from .support import (
    Tls,
    cluster,
    count,
    dataplane,
    dataplane_insight,
    get,
    global_server,
    ingress,
    keys,
    labels_of,
    logged,
    mesh,
    policy,
    running,
    until,
    zone_client,
)

MTP = "MeshTrafficPermission"


async def test_global_resources_reach_every_zone_with_origin_labels(tls: Tls, tmp_path: Path) -> None:
    glob = MemoryStore()
    await glob.commit([*map(Create, [mesh(), policy("allow-all")])])
    zone_a, zone_b = MemoryStore(), SqliteStore(tmp_path / "zone-b.db")
    try:
        async with cluster(glob, {"zone-a": zone_a, "zone-b": zone_b}, tls):
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: count(z, MTP), "the policy in the zone")
                synced = await get(zone, ResourceKey(MTP, "allow-all", "default"))
                assert labels_of(synced) == {LABEL_ORIGIN: "global"}
                assert labels_of(await get(zone, ResourceKey("Mesh", "default"))) == {LABEL_ORIGIN: "global"}

            # Live changes: a new policy, a change to it, then its deletion reach both zones.
            await glob.create(policy("deny-all", action="Deny"))
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: _has(z, ResourceKey(MTP, "deny-all", "default")), "the new policy")
            await glob.update(policy("deny-all", action="AllowWithShadowDeny"))
            for zone in (zone_a, zone_b):
                await until(
                    lambda z=zone: _action(z, "deny-all", "AllowWithShadowDeny"), "the changed policy"
                )
            await glob.delete(ResourceKey(MTP, "allow-all", "default"))
            for zone in (zone_a, zone_b):
                await until(
                    lambda z=zone: _lacks(z, ResourceKey(MTP, "allow-all", "default")), "the deleted policy"
                )
            # Zone resources never flow down: the global made none, and each zone holds only global ones.
            assert await keys(zone_a, MTP) == {ResourceKey(MTP, "deny-all", "default")}
    finally:
        await zone_b.close()


async def test_dataplanes_reach_the_global_pinned_to_their_zone(tls: Tls, tmp_path: Path) -> None:
    glob = SqliteStore(tmp_path / "global.db")
    await glob.create(mesh())
    zone_a, zone_b = MemoryStore(), MemoryStore()
    try:
        async with cluster(glob, {"zone-a": zone_a, "zone-b": zone_b}, tls):
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: _has(z, ResourceKey("Mesh", "default")), "the mesh in the zone")
            # Two zones each have a web-1: no renaming, identity includes the zone of origin.
            await zone_a.commit(
                [Create(dataplane("web-1", address="10.1.0.1")), Create(dataplane_insight("web-1"))]
            )
            await zone_b.commit([Create(dataplane("web-1", address="10.2.0.1"))])
            expected = {ResourceKey("Dataplane", "web-1", "default", z) for z in ("zone-a", "zone-b")}
            await until(lambda: _keys_are(glob, "Dataplane", expected), "both web-1 on the global")
            await until(lambda: count(glob, "DataplaneInsight"), "the insight on the global")

            for origin, address in (("zone-a", "10.1.0.1"), ("zone-b", "10.2.0.1")):
                stored = await get(glob, ResourceKey("Dataplane", "web-1", "default", origin))
                assert stored is not None
                assert stored.meta.labels == {LABEL_ORIGIN: "zone", LABEL_ZONE: origin}
                assert stored.meta.owner == ResourceKey("Zone", origin)
                assert isinstance(stored.spec, DataplaneSpec)
                assert stored.spec.networking.address == address
            insight = await get(glob, ResourceKey("DataplaneInsight", "web-1", "default", "zone-a"))
            assert insight is not None
            # The insight keeps its Dataplane as owner, re-keyed into the zone it came from.
            assert insight.meta.owner == ResourceKey("Dataplane", "web-1", "default", "zone-a")
            # Nothing of one zone reaches another zone.
            assert await keys(zone_b, "Dataplane") == {ResourceKey("Dataplane", "web-1", "default")}

            await zone_a.delete(ResourceKey("Dataplane", "web-1", "default"))
            await until(
                lambda: _keys_are(
                    glob, "Dataplane", {ResourceKey("Dataplane", "web-1", "default", "zone-b")}
                ),
                "the deleted dataplane gone from the global",
            )
            assert await count(glob, "DataplaneInsight") == 0
    finally:
        await glob.close()


async def test_an_ingress_reaches_the_other_zones_but_not_its_own(tls: Tls) -> None:
    glob, zone_a, zone_b = MemoryStore(), MemoryStore(), MemoryStore()
    async with cluster(glob, {"zone-a": zone_a, "zone-b": zone_b}, tls):
        await zone_a.create(ingress("ingress", address="192.0.2.1"))
        await zone_b.create(ingress("ingress", address="192.0.2.2"))
        await until(
            lambda: _keys_are(zone_b, "ZoneIngress", {_zi(""), _zi("zone-a")}), "zone-a's ingress in b"
        )
        await until(
            lambda: _keys_are(zone_a, "ZoneIngress", {_zi(""), _zi("zone-b")}), "zone-b's ingress in a"
        )
        relayed = await get(zone_b, _zi("zone-a"))
        assert labels_of(relayed) == {LABEL_ORIGIN: "zone", LABEL_ZONE: "zone-a"}
        assert relayed is not None
        assert relayed.meta.owner is None
        assert await keys(glob, "ZoneIngress") == {_zi("zone-a"), _zi("zone-b")}
        # The zone's own copy was not overwritten by anything relayed.
        own = await get(zone_a, _zi(""))
        assert own is not None
        assert own.meta.labels == {}


async def test_invalid_records_are_refused_by_name_while_the_rest_apply(
    tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kmesh.kds")
    glob, zone_a = MemoryStore(), MemoryStore()
    await glob.create(mesh())
    # The zone holds what a buggy zone CP might: a Dataplane breaking the model's rules (its store only
    # checks shapes) with an insight owned by it, beside valid ones.
    await zone_a.commit(
        [
            Create(mesh()),
            Create(dataplane("good-1")),
            Create(dataplane("good-2", address="10.0.0.2")),
            Create(_unnamed_service_dataplane("bad")),
            Create(dataplane_insight("good-1")),
            Create(dataplane_insight("bad")),
        ]
    )
    async with cluster(glob, {"zone-a": zone_a}, tls) as (server, _):
        good = {ResourceKey("Dataplane", n, "default", "zone-a") for n in ("good-1", "good-2")}
        await until(lambda: _keys_are(glob, "Dataplane", good), "the valid dataplanes on the global")
        await until(lambda: count(glob, "DataplaneInsight"), "the valid insight on the global")
        await until(
            lambda: _refused(caplog, "Dataplane") and _refused(caplog, "DataplaneInsight"), "both NACKs"
        )
        assert await keys(glob, "DataplaneInsight") == {
            ResourceKey("DataplaneInsight", "good-1", "default", "zone-a")
        }
        refusals = {r["type"]: r for r in logged(caplog.records, "the peer refused records")}
        assert refusals["Dataplane"]["record"] == "Dataplane/default/bad/zone-a"
        assert "kuma.io/service" in refusals["Dataplane"]["reason"]
        # The insight of the refused Dataplane fails in the store (its owner is missing); the good
        # insight of the same chunk applied anyway.
        assert refusals["DataplaneInsight"]["record"] == "DataplaneInsight/default/bad/zone-a"
        assert "does not exist" in refusals["DataplaneInsight"]["reason"]
        stats = server.sync_stats("zone-a")
        assert stats is not None
        assert stats["Dataplane"].records_rejected >= 1
        assert stats["DataplaneInsight"].records_rejected >= 1


def _zi(zone: str) -> ResourceKey:
    return ResourceKey("ZoneIngress", "ingress", "", zone)


def _unnamed_service_dataplane(name: str) -> Resource:
    base = dataplane(name, address="10.0.0.66")
    networking = DataplaneNetworking(address="10.0.0.66", inbound=[Inbound(port=8080, tags={"team": "x"})])
    return Resource(meta=base.meta, spec=DataplaneSpec(networking=networking))


def _refused(caplog: pytest.LogCaptureFixture, type_: str) -> bool:
    return any(r["type"] == type_ for r in logged(caplog.records, "the peer refused records"))


async def _has(store: MemoryStore | SqliteStore, key: ResourceKey) -> bool:
    return await get(store, key) is not None


async def _lacks(store: MemoryStore | SqliteStore, key: ResourceKey) -> bool:
    return await get(store, key) is None


async def _keys_are(store: MemoryStore | SqliteStore, type_: str, expected: set[ResourceKey]) -> bool:
    return await keys(store, type_) == expected


async def _action(store: MemoryStore | SqliteStore, name: str, action: str) -> bool:
    found = await get(store, ResourceKey(MTP, name, "default"))
    return found is not None and action in str(found.spec)


async def test_a_refused_record_is_retried_and_applies_once_what_it_needs_exists(tls: Tls) -> None:
    glob, zone_a = MemoryStore(), MemoryStore()
    await glob.create(mesh())
    await zone_a.commit(
        [Create(mesh()), Create(_unnamed_service_dataplane("web-1")), Create(dataplane_insight("web-1"))]
    )
    settings = SyncSettings(nack_retry_initial_s=0.05, nack_retry_max_s=0.2)
    server = global_server(glob, tls)
    async with running(server):
        client = zone_client(zone_a, "zone-a", tls, server.port, sync_settings=settings)
        async with running(client):
            await until(
                lambda: _refused_twice(client, "DataplaneInsight"), "the insight refused, then retried"
            )
            assert await count(glob, "DataplaneInsight") == 0
            # The zone fixes its Dataplane: that change flows at once, and the unchanged insight, refused
            # before for want of its owner, goes through on its next retry.
            await zone_a.update(dataplane("web-1"))
            await until(lambda: count(glob, "DataplaneInsight"), "the insight applied on a retry")
            insight = await get(glob, ResourceKey("DataplaneInsight", "web-1", "default", "zone-a"))
            assert insight is not None
            assert insight.meta.owner == ResourceKey("Dataplane", "web-1", "default", "zone-a")


def _refused_twice(client: KdsZoneClient, type_: str) -> bool:
    stats = client.sync_stats()
    return stats is not None and type_ in stats and stats[type_].records_refused_by_peer >= 2


async def test_an_initial_sync_during_concurrent_deletes_converges_exactly(tls: Tls, tmp_path: Path) -> None:
    glob = MemoryStore()
    await glob.commit([Create(mesh()), *(Create(policy(f"p-{i:03d}")) for i in range(600))])
    zone_a = SqliteStore(tmp_path / "zone-a.db")
    # One policy per page and one chunk in flight: the initial sync is a long series of small steps, each
    # waiting for the zone to commit the previous one.
    settings = SyncSettings(page_records=1)
    try:
        async with cluster(glob, {"zone-a": zone_a}, tls, sync_settings=settings, max_unacked=1) as (
            server,
            _,
        ):
            await until(lambda: _sent(server, MTP) >= 50, "the initial sync under way")
            # Deleting policies already sent shifts every later page back: without care, as many unsent
            # policies would be skipped by the rest of the listing.
            await glob.commit([Delete(ResourceKey(MTP, f"p-{i:03d}", "default")) for i in range(40)])
            remaining = {ResourceKey(MTP, f"p-{i:03d}", "default") for i in range(40, 600)}
            await until(lambda: _keys_are(zone_a, MTP, remaining), "exactly the remaining policies")
    finally:
        await zone_a.close()


def _sent(server: KdsGlobalServer, type_: str) -> int:
    stats = server.sync_stats("zone-a")
    return stats[type_].records_sent if stats and type_ in stats else 0
