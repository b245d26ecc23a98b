"""The zone lifecycle on the global: Zone creation, ZoneInsight subscriptions, disabling and re-enabling a
zone, deleting a disconnected zone, stale subscriptions, replacement of a zone's older connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest

from kmesh.kds import Close, ConnectionClosed, Hello, KdsConnection, KdsMessage, Role, Welcome, Welcomed
from kmesh.model import Meta, Resource, ResourceKey, new_resource
from kmesh.model.types.zone import KDSSubscription, ZoneInsightSpec, ZoneSpec
from kmesh.store import Create, MemoryStore, ResourceStore, SqliteStore
from kmesh.wire import MessageCodec

from .support import (
    GLOBAL_ID,
    Tls,
    cluster,
    count,
    dataplane,
    dataplane_insight,
    get,
    global_server,
    ingress,
    keys,
    logged,
    mesh,
    running,
    until,
)


async def test_first_connection_creates_the_zone_and_insight_records_it(tls: Tls, tmp_path: Path) -> None:
    glob = SqliteStore(tmp_path / "global.db")
    try:
        async with cluster(glob, {"zone-a": MemoryStore()}, tls, heartbeat_interval_s=0.1) as (
            server,
            clients,
        ):
            await until(lambda: server.is_connected("zone-a"), "zone-a connected")
            zone = await get(glob, ResourceKey("Zone", "zone-a"))
            assert zone is not None
            assert zone.spec == ZoneSpec(enabled=True)
            assert server.connected_zones() == ["zone-a"]
            await until(lambda: _heartbeat_and_counts(glob, "zone-a"), "the insight's heartbeat and counters")
            (sub,) = await _subscriptions(glob, "zone-a")
            assert sub.global_instance_id == GLOBAL_ID
            assert sub.zone_instance_id == "zone-a-cp-1"
            assert sub.version.kuma_cp.version == "test"
            assert sub.auth_token_provided
            assert sub.disconnect_time is None
            # Every type the global sends was answered at least once (the initial sync's last chunk).
            assert sub.status.stat["Mesh"].responses_sent >= 1
            assert sub.status.total.responses_sent >= sub.status.stat["Mesh"].responses_sent
            await clients["zone-a"].stop()
            await until(lambda: not server.is_connected("zone-a"), "zone-a disconnected")
            await until(lambda: _closed_subscriptions(glob, "zone-a", 1), "the subscription closed")
    finally:
        await glob.close()


async def test_disabling_a_zone_refuses_it_and_withdraws_its_ingresses(
    tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kmesh.kds")
    glob, zone_a, zone_b = MemoryStore(), MemoryStore(), MemoryStore()
    async with cluster(glob, {"zone-a": zone_a, "zone-b": zone_b}, tls) as (server, clients):
        await zone_a.create(ingress("ingress", address="192.0.2.1"))
        relayed = ResourceKey("ZoneIngress", "ingress", "", "zone-a")
        await until(lambda: _has(zone_b, relayed), "zone-a's ingress in zone-b")

        await glob.update(new_resource("Zone", "zone-a", ZoneSpec(enabled=False)))
        await until(lambda: _lacks(zone_b, relayed), "zone-a's ingress withdrawn from zone-b")
        client_a = clients["zone-a"]
        refused = "zone_disabled: zone zone-a is disabled on the global control plane"
        await until(lambda: client_a.last_error == refused, "zone-a refused on reconnect")
        # First its live connection was closed, saying why; every later attempt is refused.
        (dropped, *_) = logged(caplog.records, "disconnected from the global control plane")
        assert (dropped["code"], dropped["reason"]) == (
            "zone_disabled",
            "zone disabled: " + refused.split(": ", 1)[1],
        )
        assert not client_a.connected
        assert not server.is_connected("zone-a")
        assert server.is_connected("zone-b")
        # The zone keeps what it has (failure mode: link down) and the global keeps what the zone sent.
        assert await count(zone_a, "ZoneIngress") == 1
        assert await keys(glob, "ZoneIngress") == {relayed}

        await glob.update(new_resource("Zone", "zone-a", ZoneSpec(enabled=True)))
        await until(lambda: client_a.connected, "zone-a back")
        await until(lambda: _has(zone_b, relayed), "zone-a's ingress back in zone-b")


async def test_deleting_a_disconnected_zone_deletes_everything_it_sent(tls: Tls, tmp_path: Path) -> None:
    glob = SqliteStore(tmp_path / "global.db")
    await glob.create(mesh())
    zone_a, zone_b = MemoryStore(), MemoryStore()
    try:
        async with cluster(glob, {"zone-a": zone_a, "zone-b": zone_b}, tls) as (server, clients):
            await until(lambda: _has(zone_a, ResourceKey("Mesh", "default")), "the mesh in zone-a")
            await zone_a.commit(
                [
                    Create(dataplane("web-1")),
                    Create(dataplane_insight("web-1")),
                    Create(ingress("ingress", address="192.0.2.1")),
                ]
            )
            await zone_b.create(ingress("ingress", address="192.0.2.2"))
            relayed = ResourceKey("ZoneIngress", "ingress", "", "zone-a")
            await until(lambda: _has(zone_b, relayed), "zone-a's ingress in zone-b")
            await until(
                lambda: count(glob, "DataplaneInsight", zone="zone-a"), "zone-a's insight on the global"
            )

            await clients["zone-a"].stop()
            await until(lambda: not server.is_connected("zone-a"), "zone-a disconnected")
            await glob.delete(ResourceKey("Zone", "zone-a"))

            for type_ in ("Dataplane", "DataplaneInsight", "ZoneIngress", "ZoneInsight"):
                assert await count(glob, type_, zone="zone-a") == 0, type_
            assert await get(glob, ResourceKey("ZoneInsight", "zone-a")) is None
            await until(lambda: _lacks(zone_b, relayed), "zone-a's ingress gone from zone-b")
            # zone-b's own resources are untouched.
            assert await keys(glob, "ZoneIngress") == {ResourceKey("ZoneIngress", "ingress", "", "zone-b")}
    finally:
        await glob.close()


async def test_deleting_a_connected_zones_zone_through_the_store_makes_it_reconnect_and_resync(
    tls: Tls,
) -> None:
    glob, zone_a = MemoryStore(), MemoryStore()
    await glob.create(mesh())
    async with cluster(glob, {"zone-a": zone_a}, tls) as (server, clients):
        await until(lambda: _has(zone_a, ResourceKey("Mesh", "default")), "the mesh in zone-a")
        await zone_a.create(dataplane("web-1"))
        pinned = ResourceKey("Dataplane", "web-1", "default", "zone-a")
        await until(lambda: _has(glob, pinned), "web-1 on the global")
        # The API refuses this while the zone is connected; the store does not, and the server copes:
        # the cascade removes what the zone sent, the connection is closed, the zone comes back.
        await glob.delete(ResourceKey("Zone", "zone-a"))
        client = clients["zone-a"]
        await until(lambda: client.counters.established >= 2, "zone-a reconnected")
        await until(lambda: _has(glob, pinned), "web-1 sent again after the reconnect")
        assert await _has(glob, ResourceKey("Zone", "zone-a"))
        assert server.is_connected("zone-a")


async def test_stale_subscriptions_are_closed_when_a_new_global_starts(tls: Tls, tmp_path: Path) -> None:
    glob = SqliteStore(tmp_path / "global.db")
    now = dt.datetime.now(dt.UTC)
    hour_ago = now - dt.timedelta(hours=1)
    left_by_this_instance = _sub("mine", GLOBAL_ID, connected=hour_ago)
    dead_replica = _sub("dead", "global-old", connected=hour_ago, heartbeat=hour_ago)
    killed_run = _sub("live", "global-other", connected=hour_ago, heartbeat=now)
    closed_before = _sub("done", "global-old", connected=hour_ago, disconnected=hour_ago)
    await glob.commit(
        [
            Create(new_resource("Zone", "zone-a")),
            Create(_insight("zone-a", [closed_before, left_by_this_instance, dead_replica])),
            Create(new_resource("Zone", "zone-b")),
            Create(_insight("zone-b", [killed_run])),
        ]
    )
    server = global_server(glob, tls)
    try:
        async with running(server):
            subs_a = {s.id: s for s in await _subscriptions(glob, "zone-a")}
            assert subs_a["mine"].disconnect_time is not None
            assert subs_a["dead"].disconnect_time is not None
            assert subs_a["done"].disconnect_time == hour_ago
            (fresh,) = await _subscriptions(glob, "zone-b")
            # Even a fresh-looking entry is closed at start: the global runs as one instance, so it was
            # left by a run that was killed (the zone shows Offline until it reconnects).
            assert fresh.disconnect_time is not None
    finally:
        await glob.close()


async def test_a_second_connection_of_a_zone_replaces_the_first(tls: Tls) -> None:
    glob, zone_a = MemoryStore(), MemoryStore()
    async with cluster(glob, {"zone-a": zone_a}, tls, kept_subscriptions=3) as (server, clients):
        client = clients["zone-a"]
        await until(lambda: client.connected, "zone-a connected")
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: KdsConnection(Role.ZONE),
            "127.0.0.1",
            server.port,
            ssl=tls.client,
            server_hostname="localhost",
        )
        try:
            conn.session.connect(Hello(zone="zone-a", instance_id="zone-a-cp-2", token="t"))
            conn.flush()
            assert isinstance(await conn.next_event(), Welcomed)
            # The client's connection was closed as replaced; it reconnects and in turn replaces ours.
            await until(lambda: client.counters.established >= 2, "the client reconnected")
            assert client.counters.failures >= 1
            closed = await _closed_event(conn)
            assert closed.code == "replaced"
            assert "zone-a" in closed.reason
        finally:
            conn.close()
            await conn.wait_closed()
        await until(lambda: client.connected and server.is_connected("zone-a"), "the client connected")
        subs = await _subscriptions(glob, "zone-a")
        assert [s.zone_instance_id for s in subs] == ["zone-a-cp-1", "zone-a-cp-2", "zone-a-cp-1"]
        assert [s.disconnect_time is None for s in subs] == [False, False, True]


async def test_a_silent_zone_is_dropped_and_its_subscription_closed(tls: Tls) -> None:
    glob = MemoryStore()
    async with cluster(glob, {}, tls, heartbeat_interval_s=0.1) as (server, _):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=tls.client, server_hostname="localhost"
        )
        codec = MessageCodec[KdsMessage](KdsMessage)
        # A zone that says hello and then nothing at all, but keeps reading.
        writer.write(codec.encode(Hello(zone="zone-q", token="t")))
        received: list[KdsMessage] = []
        while not any(isinstance(m, Close) for m in received):
            data = await asyncio.wait_for(reader.read(65536), 60)
            assert data, f"the global hung up without a Close after {received!r}"
            received.extend(codec.feed(data))
        assert isinstance(received[0], Welcome)
        close = received[-1]
        assert isinstance(close, Close)
        assert close.code == "heartbeat_timeout"
        writer.close()
        await until(lambda: _closed_subscriptions(glob, "zone-q", 1), "the subscription closed")
        assert not server.is_connected("zone-q")


async def _closed_event(conn: KdsConnection) -> ConnectionClosed:
    while True:
        event = await asyncio.wait_for(conn.next_event(), 60)
        if isinstance(event, ConnectionClosed):
            return event


def _sub(
    id_: str,
    instance: str,
    *,
    connected: dt.datetime,
    heartbeat: dt.datetime | None = None,
    disconnected: dt.datetime | None = None,
) -> KDSSubscription:
    return KDSSubscription(
        id=id_,
        global_instance_id=instance,
        connect_time=connected,
        last_heartbeat_time=heartbeat,
        disconnect_time=disconnected,
    )


def _insight(zone: str, subs: list[KDSSubscription]) -> Resource:
    meta = Meta(type="ZoneInsight", name=zone, owner=ResourceKey("Zone", zone))
    return Resource(meta=meta, spec=ZoneInsightSpec(subscriptions=subs))


async def _subscriptions(store: ResourceStore, zone: str) -> list[KDSSubscription]:
    found = await get(store, ResourceKey("ZoneInsight", zone))
    if found is None:
        return []
    assert isinstance(found.spec, ZoneInsightSpec)
    return list(found.spec.subscriptions)


async def _heartbeat_and_counts(store: ResourceStore, zone: str) -> bool:
    subs = await _subscriptions(store, zone)
    return (
        bool(subs) and subs[-1].status.total.responses_sent > 0 and subs[-1].last_heartbeat_time is not None
    )


async def _closed_subscriptions(store: ResourceStore, zone: str, expected: int) -> bool:
    subs = await _subscriptions(store, zone)
    return len(subs) == expected and all(s.disconnect_time is not None for s in subs)


async def _has(store: ResourceStore, key: ResourceKey) -> bool:
    return await get(store, key) is not None


async def _lacks(store: ResourceStore, key: ResourceKey) -> bool:
    return await get(store, key) is None
