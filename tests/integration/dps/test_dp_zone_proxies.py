"""Zone ingress and zone egress over real TLS: zone-proxy tokens, the ingress's ``availableServices``
following the zone's healthy inbounds (health reports included), and the egress's certificates."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from kmesh.dps import DpClient, DpServer, issue_zone_proxy_token, zone_proxy_key_set
from kmesh.model import ResourceKey, parse_resource
from kmesh.model.types import DataplaneSpec, ZoneIngressSpec
from kmesh.model.types.zoneingress import AvailableService
from kmesh.pki import ca_secrets, generate_ca
from kmesh.store import ResourceStore

from .support import ZONE, Tls, client, dataplane_doc, dp_key, dp_tls, get, running, seed_mesh, server, until

INGRESS = ResourceKey("ZoneIngress", "ingress-1")


async def zone_proxy_token(store: ResourceStore, proxy_type: str, name: str) -> str:
    keys = zone_proxy_key_set((await store.list("GlobalSecret")).items)
    return issue_zone_proxy_token(keys, proxy_type=proxy_type, name=name, valid_for_s=600, now=time.time())  # type: ignore[arg-type]


def ingress_doc() -> dict[str, Any]:
    return {
        "type": "ZoneIngress",
        "name": "ingress-1",
        "networking": {
            "address": "10.0.9.1",
            "port": 10001,
            "advertisedAddress": "203.0.113.9",
            "advertisedPort": 10001,
        },
    }


def service(name: str, count: int, **tags: str) -> AvailableService:
    return AvailableService(
        mesh="default", tags={"kuma.io/service": name, "kuma.io/zone": ZONE, **tags}, instances=count
    )


async def advertised(store: ResourceStore) -> list[AvailableService] | None:
    ingress = await get(store, INGRESS)
    if ingress is None or not isinstance(ingress.spec, ZoneIngressSpec):
        return None
    return ingress.spec.available_services


async def _ingress(store: ResourceStore, tls: Tls, dp_server: DpServer) -> DpClient:
    token = await zone_proxy_token(store, "ingress", "ingress-1")
    ingress: DpClient = client(dp_server.port, tls, ingress_doc(), token, proxy_type="ingress")
    return ingress


async def test_ingress_available_services_follow_healthy_inbounds(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    await store.create(
        parse_resource(dataplane_doc("web-1", "web", tags={"version": "v1"}, address="10.0.0.1"))
    )
    await store.create(parse_resource(dataplane_doc("backend-1", "backend", address="10.0.0.3")))
    async with running(dp_server):
        web2 = client(
            dp_server.port,
            tls,
            dataplane_doc("web-2", "web", tags={"version": "v1"}, address="10.0.0.2"),
            mesh.token(),
        )
        ingress = await _ingress(store, tls, dp_server)
        async with running(web2, ingress):
            await until(lambda: ingress.current_config is not None, "the ingress's config")
            stored = await get(store, INGRESS)
            assert stored is not None
            assert isinstance(stored.spec, ZoneIngressSpec)
            assert stored.spec.zone == ZONE
            assert stored.meta.labels["kuma.io/zone"] == ZONE

            async def advertises(wanted: list[AvailableService]) -> bool:
                return await advertised(store) == wanted

            await until(
                lambda: advertises([service("backend", 1), service("web", 2, version="v1")]), "two webs"
            )
            config = ingress.current_config
            assert config is not None
            assert config.proxy_type == "ingress"
            assert config.ingress is not None
            assert {r.service for r in config.ingress.routes.values()} == {"backend", "web"}

            web2.set_inbound_health(8080, False)
            await until(
                lambda: advertises([service("backend", 1), service("web", 1, version="v1")]), "one web"
            )
            web2_stored = await get(store, dp_key("web-2"))
            assert web2_stored is not None
            assert isinstance(web2_stored.spec, DataplaneSpec)
            inbound = web2_stored.spec.networking.inbound[0]
            assert inbound.health is not None
            assert not inbound.health.ready

            web2.set_inbound_health(8080, True)
            await store.create(parse_resource(dataplane_doc("db-1", "db", address="10.0.0.4")))
            await until(
                lambda: advertises(
                    [service("backend", 1), service("db", 1), service("web", 2, version="v1")]
                ),
                "a new service and the web back",
            )
            await store.delete(dp_key("backend-1"))
            await until(
                lambda: advertises([service("db", 1), service("web", 2, version="v1")]), "backend gone"
            )


async def test_a_zone_proxy_needs_a_token_of_its_zone(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        with_mesh_token = client(dp_server.port, tls, ingress_doc(), mesh.token(), proxy_type="ingress")
        async with running(with_mesh_token):
            await until(lambda: with_mesh_token.last_rejection is not None, "a refusal")
        assert with_mesh_token.last_rejection is not None
        assert with_mesh_token.last_rejection[0] == "token_unknown_key"
        assert await get(store, INGRESS) is None


async def test_an_egress_gets_a_certificate_for_each_mesh_it_terminates(store: ResourceStore) -> None:
    await store.create(
        parse_resource(
            {
                "type": "Mesh",
                "name": "default",
                "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
                "routing": {"zoneEgress": True},
            }
        )
    )

    bundle = generate_ca("default", "ca-1", now=datetime.now(UTC))
    for secret in ca_secrets("default", "ca-1", bundle):
        await store.create(secret)
    await store.create(
        parse_resource(
            {
                "type": "MeshExternalService",
                "name": "httpbin",
                "mesh": "default",
                "spec": {"match": {"port": 80}, "endpoints": [{"address": "httpbin.org", "port": 443}]},
            }
        )
    )
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        token = await zone_proxy_token(store, "egress", "egress-1")
        doc = {"type": "ZoneEgress", "name": "egress-1", "networking": {"address": "10.0.9.2", "port": 10002}}
        egress = client(dp_server.port, tls, doc, token, proxy_type="egress")
        async with running(egress):
            await until(lambda: "default" in egress.certificates, "the egress's certificate for mesh default")
            cert = egress.certificates["default"]
            parsed = x509.load_pem_x509_certificate(cert.cert_pem)
            parsed.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle.cert_pem))
            sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
                "spiffe://default/zone-egress"
            ]
            config = egress.current_config
            assert config is not None
            assert config.egress is not None
            assert [r.name for r in config.egress.external_services.values()] == ["httpbin"]
