"""Config pushes over real TLS: a relevant change brings a new config version at once, an irrelevant one
sends nothing, a burst in one commit is one push, ACKs and NACKs are recorded in the DataplaneInsight."""

from __future__ import annotations

from typing import Any

import msgspec

from kmesh.model import Resource, parse_resource
from kmesh.model.types import DataplaneInsightSpec
from kmesh.proxyconfig import ProxyConfig
from kmesh.store import Create, ResourceStore

from .support import (
    client,
    dataplane_doc,
    dp_tls,
    get,
    insight_key,
    running,
    seed_mesh,
    server,
    until,
)


def endpoints_of(config: ProxyConfig | None, service: str) -> set[tuple[str, int]]:
    if config is None:
        return set()
    return {(e.address, e.port) for c in config.clusters if c.service == service for e in c.endpoints}


async def insight_meta(store: ResourceStore, name: str) -> tuple[dict[str, Any], int, int, int]:
    """The insight's ``metadata.config`` and its newest subscription's sent, acked and rejected counts."""
    insight = await get(store, insight_key(name))
    if (
        insight is None
        or not isinstance(insight.spec, DataplaneInsightSpec)
        or not insight.spec.subscriptions
    ):
        return {}, 0, 0, 0
    total = insight.spec.subscriptions[-1].status.total
    config = insight.spec.metadata.get("config", {})
    return config, total.responses_sent, total.responses_acknowledged, total.responses_rejected


async def test_a_new_endpoint_brings_a_new_config_and_the_ack_is_recorded(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    await dp_server.start()
    web = client(
        dp_server.port, tls, dataplane_doc("web-1", "web", outbound=[("backend", 9000)]), mesh.token()
    )
    backend = client(
        dp_server.port, tls, dataplane_doc("backend-1", "backend", address="10.0.0.2"), mesh.token()
    )
    try:
        async with running(web):
            await until(lambda: web.current_config is not None, "web's first config")
            first = web.current_config
            assert first is not None
            assert first.name == "web-1"
            assert first.mtls_enabled
            assert [o.service for o in first.outbounds] == ["backend"]
            assert endpoints_of(first, "backend") == set()
            async with running(backend):
                await until(
                    lambda: endpoints_of(web.current_config, "backend") == {("10.0.0.2", 8080)},
                    "the endpoint",
                )
                second = web.current_config
                assert second is not None
                assert second.version != first.version

                async def ack_recorded() -> bool:
                    config, sent, acked, _ = await insight_meta(store, "web-1")
                    return config.get("ackedVersion") == second.version and acked == sent == 2

                await until(ack_recorded, "the ACK of the second config in the insight")
    finally:
        await dp_server.stop()


async def test_only_changed_configs_are_sent_and_a_burst_is_one_push(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    other = await seed_mesh(store, "other")
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        web = client(
            dp_server.port, tls, dataplane_doc("web-1", "web", outbound=[("backend", 9000)]), mesh.token()
        )
        async with running(web):
            await until(lambda: web.current_config is not None, "web's first config")

            async def counts() -> tuple[int, int]:
                _, sent, acked, _ = await insight_meta(store, "web-1")
                return sent, acked

            async def settled_at(n: int) -> bool:
                return await counts() == (n, n)

            await until(lambda: settled_at(1), "the first config acked")
            # Irrelevant: a dataplane of another mesh. Then, in one commit, twenty backends: one push.
            await store.create(parse_resource(dataplane_doc("elsewhere", "web", mesh=other.name)))
            burst = [
                Create(parse_resource(dataplane_doc(f"backend-{i}", "backend", address=f"10.0.1.{i + 1}")))
                for i in range(20)
            ]
            await store.commit(burst)
            await until(lambda: len(endpoints_of(web.current_config, "backend")) == 20, "twenty endpoints")
            await until(lambda: settled_at(2), "the second config acked")
            assert web.counters.configs_applied == 2


async def test_a_refused_config_is_nacked_and_the_previous_one_stays(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)

    def apply(config: ProxyConfig) -> None:
        if ("10.0.0.66", 8080) in endpoints_of(config, "backend"):
            raise ValueError("endpoint 10.0.0.66 is on the deny list")

    async with running(dp_server):
        web = client(
            dp_server.port,
            tls,
            dataplane_doc("web-1", "web", outbound=[("backend", 9000)]),
            mesh.token(),
            apply_config=apply,
        )
        async with running(web):
            await until(lambda: web.current_config is not None, "web's first config")
            first = web.current_config
            assert first is not None
            await store.create(parse_resource(dataplane_doc("backend-bad", "backend", address="10.0.0.66")))

            async def nack_recorded() -> bool:
                config, _, _, rejected = await insight_meta(store, "web-1")
                return rejected == 1 and "deny list" in config.get("lastNackReason", "")

            await until(nack_recorded, "the NACK in the insight")
            assert web.current_config is first
            assert web.counters.configs_refused == 1
            config, _, _, _ = await insight_meta(store, "web-1")
            assert config["nackedVersion"] != config["ackedVersion"]
            assert config["ackedVersion"] == first.version
            assert config["lastNackReason"] == "ValueError: endpoint 10.0.0.66 is on the deny list"


async def test_configs_iterate_as_they_arrive(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        web = client(
            dp_server.port, tls, dataplane_doc("web-1", "web", outbound=[("backend", 9000)]), mesh.token()
        )
        async with running(web):
            seen: list[ProxyConfig] = []
            stream = web.configs()
            seen.append(await anext(stream))
            await store.create(parse_resource(dataplane_doc("backend-1", "backend", address="10.0.0.2")))
            seen.append(await anext(stream))
            await stream.aclose()
            assert endpoints_of(seen[0], "backend") == set()
            assert endpoints_of(seen[1], "backend") == {("10.0.0.2", 8080)}


async def test_another_zones_ingress_brings_remote_endpoints(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        web = client(
            dp_server.port, tls, dataplane_doc("web-1", "web", outbound=[("backend", 9000)]), mesh.token()
        )
        async with running(web):
            await until(lambda: web.current_config is not None, "web's first config")
            remote = parse_resource(
                {
                    "type": "ZoneIngress",
                    "name": "ingress-1",
                    "zone": "zone-2",
                    "networking": {
                        "address": "10.2.0.1",
                        "port": 10001,
                        "advertisedAddress": "198.51.100.7",
                        "advertisedPort": 10001,
                    },
                    "availableServices": [
                        {
                            "mesh": "default",
                            "tags": {"kuma.io/service": "backend", "kuma.io/zone": "zone-2"},
                            "instances": 3,
                        }
                    ],
                }
            )
            # As KDS stores another zone's ingress: with its zone of origin.
            meta = msgspec.structs.replace(
                remote.meta, zone="zone-2", labels={"kuma.io/origin": "zone", "kuma.io/zone": "zone-2"}
            )
            await store.create(Resource(meta=meta, spec=remote.spec))
            await until(
                lambda: endpoints_of(web.current_config, "backend") == {("198.51.100.7", 10001)},
                "the ingress",
            )
            config = web.current_config
            assert config is not None
            (cluster,) = [c for c in config.clusters if c.service == "backend"]
            (endpoint,) = cluster.endpoints
            assert endpoint.via == "ingress"
            assert endpoint.zone == "zone-2"
            assert endpoint.weight == 3
            assert endpoint.sni is not None
