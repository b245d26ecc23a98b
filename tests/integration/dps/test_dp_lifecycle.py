"""A proxy's life over real TLS: certificate rotation at 4/5 of a short lifetime, graceful deregistration
(and its cancellation by a reconnect), Offline after a partition, replacement of an older connection, and
a control plane restart that leaves the proxy on its last config until it resyncs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cryptography import x509

from kmesh.dps import Certificate, CloseCode
from kmesh.model import Meta, Resource, ResourceKey, parse_resource
from kmesh.model.types import DataplaneInsightSpec
from kmesh.model.types.insight import DiscoverySubscription
from kmesh.store import ResourceStore
from kmesh.testing import FaultProxy

from .support import (
    CP_INSTANCE,
    TIMEOUT_S,
    client,
    dataplane_doc,
    dp_key,
    dp_tls,
    get,
    insight_key,
    running,
    seed_mesh,
    server,
    until,
)


async def _online(store: ResourceStore, name: str) -> bool | None:
    """Whether the dataplane's insight shows it online; None when there is no insight."""
    insight = await get(store, insight_key(name))
    if insight is None or not isinstance(insight.spec, DataplaneInsightSpec):
        return None
    return insight.spec.connected


async def test_the_certificate_is_renewed_at_four_fifths_of_its_life(store: ResourceStore) -> None:
    mesh = await seed_mesh(store, rotation="3s")
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    received: list[Certificate] = []

    async def on_certificate(cert: Certificate) -> None:
        received.append(cert)

    async with running(dp_server):
        proxy = client(
            dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token(), on_certificate=on_certificate
        )
        async with running(proxy):
            await asyncio.wait_for(proxy.wait_for(lambda c: c.counters.certificates >= 1), TIMEOUT_S)
            first = proxy.certificate
            assert first is not None
            # 3 s of validity (plus a tenth back-dated): renewal is due well before it expires.
            assert first.not_after - first.renew_at > 0.5
            await until(lambda: proxy.counters.certificates >= 2, "a renewed certificate")
            second = proxy.certificate
            assert second is not None
            assert second.request_id != first.request_id
            assert second.key_pem != first.key_pem, "every renewal makes a new key"
            assert x509.load_pem_x509_certificate(second.cert_pem).serial_number != (
                x509.load_pem_x509_certificate(first.cert_pem).serial_number
            )

            async def two_regenerations() -> bool:
                insight = await get(store, insight_key("web-1"))
                spec = insight.spec if insight is not None else None
                return (
                    isinstance(spec, DataplaneInsightSpec)
                    and spec.mtls is not None
                    and spec.mtls.certificate_regenerations >= 2
                )

            await until(two_regenerations, "two certificates in the insight")
            assert received[:2] == [first, second]


async def test_a_graceful_close_deregisters_the_dataplane(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy = client(dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        await proxy.start()
        await until(lambda: proxy.current_config is not None, "a config")
        assert await get(store, dp_key("web-1")) is not None
        await proxy.close()
        await until(lambda: _gone(store, "web-1"), "deregistration")
        assert await get(store, insight_key("web-1")) is None, "the insight goes with its dataplane"
        assert not dp_server.is_connected(dp_key("web-1"))


async def _gone(store: ResourceStore, name: str) -> bool:
    return await get(store, dp_key(name)) is None


async def test_a_restart_without_deregistering_keeps_the_dataplane_offline(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy = client(dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        await proxy.start()
        await until(lambda: proxy.current_config is not None, "a config")
        await proxy.close(deregister=False)
        await until(lambda: _online_is(store, "web-1", False), "the insight showing Offline")
        # The connection's end was handled (its disconnect is written after it): nothing is pending.
        assert dp_server.pending_deregistrations() == []
        assert await get(store, dp_key("web-1")) is not None


async def _online_is(store: ResourceStore, name: str, wanted: bool) -> bool:
    return await _online(store, name) is wanted


async def test_coming_back_within_the_delay_cancels_the_deregistration(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls, deregister_delay_s=3600.0)
    doc = dataplane_doc("web-1", "web")
    async with running(dp_server):
        first = client(dp_server.port, tls, doc, mesh.token(), instance_id="run-1")
        await first.start()
        await until(lambda: first.current_config is not None, "a config")
        await first.close()
        await until(
            lambda: dp_server.pending_deregistrations() == [dp_key("web-1")], "a pending deregistration"
        )
        second = client(dp_server.port, tls, doc, mesh.token(), instance_id="run-2")
        async with running(second):
            await until(lambda: second.current_config is not None, "the second run's config")
            assert dp_server.pending_deregistrations() == []
            stored = await get(store, dp_key("web-1"))
            assert stored is not None
            assert stored.meta.labels["kmesh.io/proxy-instance"] == "run-2"
            assert await _online(store, "web-1") is True


async def test_a_partitioned_proxy_shows_offline_and_comes_back(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls, heartbeat_interval_s=0.2)
    async with running(dp_server), FaultProxy("127.0.0.1", dp_server.port) as link:
        proxy = client(link.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        async with running(proxy):
            await until(lambda: proxy.current_config is not None, "a config")
            assert await _online(store, "web-1") is True
            link.block()
            await until(lambda: _online_is(store, "web-1", False), "Offline after missed heartbeats")
            assert await get(store, dp_key("web-1")) is not None, "a silent proxy is not deregistered"
            assert proxy.current_config is not None, "the proxy keeps its config meanwhile"
            link.unblock()
            await until(lambda: _online_is(store, "web-1", True), "online again")
            insight = await get(store, insight_key("web-1"))
            assert insight is not None
            assert isinstance(insight.spec, DataplaneInsightSpec)
            assert len(insight.spec.subscriptions) >= 2
            assert all(s.disconnect_time is not None for s in insight.spec.subscriptions[:-1])


async def test_a_second_connection_of_one_proxy_replaces_the_first(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    doc = dataplane_doc("web-1", "web")
    async with running(dp_server):
        first = client(dp_server.port, tls, doc, mesh.token(), backoff_initial_s=5.0, backoff_max_s=5.0)
        await first.start()
        await until(lambda: first.connected, "the first connection")
        second = client(dp_server.port, tls, doc, mesh.token())
        async with running(second):
            await until(
                lambda: (first.last_error or "").startswith(CloseCode.REPLACED), "the older one replaced"
            )
            await first.close(deregister=False)
            await until(
                lambda: second.connected and dp_server.is_connected(dp_key("web-1")), "the newer one live"
            )
            assert "replaced by a newer connection" in (first.last_error or "")


async def test_a_control_plane_restart_keeps_the_last_config_then_resyncs(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    await dp_server.start()
    port = dp_server.port
    proxy = client(port, tls, dataplane_doc("web-1", "web", outbound=[("backend", 9000)]), mesh.token())
    async with running(proxy):
        await until(lambda: proxy.current_config is not None, "a config")
        before = proxy.current_config
        await dp_server.stop()
        await until(lambda: not proxy.connected, "the proxy noticing")
        assert proxy.current_config is before
        assert proxy.certificate is not None
        # While the control plane is down, a backend appears in the store.
        await store.create(parse_resource(dataplane_doc("backend-1", "backend", address="10.0.0.2")))
        restarted = server(store, tls, port=port)
        async with running(restarted):
            await until(lambda: proxy.counters.established >= 2, "a reconnect")

            def resynced() -> bool:
                config = proxy.current_config
                return config is not None and any(
                    c.service == "backend" and c.endpoints for c in config.clusters
                )

            await until(resynced, "the config with the new backend")
            assert await _online(store, "web-1") is True


async def test_a_deleted_dataplane_registers_again_and_a_deleted_mesh_refuses(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy = client(dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        async with running(proxy):
            await until(lambda: proxy.current_config is not None, "a config")
            await store.delete(dp_key("web-1"))
            await until(lambda: proxy.counters.established >= 2, "a new connection")
            await until(lambda: _present(store, "web-1"), "the dataplane registered again")
            assert proxy.last_disconnect is not None
            assert proxy.last_disconnect[0] == "resource_deleted"
            await store.delete(ResourceKey("Mesh", "default"))
            await until(lambda: proxy.last_rejection is not None, "the refusal without a mesh")
            assert proxy.last_rejection is not None
            assert proxy.last_rejection[0] == "mesh_not_found"
            assert proxy.current_config is not None, "the proxy keeps its last config"


async def _present(store: ResourceStore, name: str) -> bool:
    return await get(store, dp_key(name)) is not None


async def test_subscriptions_left_open_by_a_crash_are_closed_at_start(store: ResourceStore) -> None:
    await seed_mesh(store)
    now = datetime.now(UTC)
    for name, instance in (("web-1", CP_INSTANCE), ("web-2", "another-cp-replica")):
        dataplane = parse_resource(dataplane_doc(name, "web"))
        await store.create(dataplane)
        sub = DiscoverySubscription(id=f"sub-{name}", control_plane_instance_id=instance, connect_time=now)
        meta = Meta(type="DataplaneInsight", name=name, mesh="default", owner=dataplane.key)
        await store.create(Resource(meta=meta, spec=DataplaneInsightSpec(subscriptions=[sub])))
    tls = await dp_tls(store)
    async with running(server(store, tls)):
        # This instance's own entry cannot be live (it just started); another replica's fresh one may be.
        assert await _online(store, "web-1") is False
        assert await _online(store, "web-2") is True
