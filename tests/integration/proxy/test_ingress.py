"""A zone ingress runtime on loopback between a client sidecar and a service sidecar, all with real mTLS:
client app → client sidecar → (mTLS, SNI) → ingress (peek, passthrough) → service sidecar → app.

What is checked: the call crosses the ingress with the client's identity intact (the service sidecar
authorizes the client, not the ingress); the ingress holds no certificate; a plain TCP client, a TLS client
with an unknown SNI, and a client that never finishes its ClientHello are closed and counted; the ingress
weighs its local endpoints per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from kmesh.pki import CaBundle
from kmesh.proxy._gateway import SniGateway
from kmesh.proxy._runtime import ProxyRuntime
from kmesh.proxy._stats import ProxyStats
from kmesh.proxyconfig import (
    Endpoint,
    IngressConfig,
    LbConfig,
    ProxyConfig,
    SniRoute,
    seal,
    sni_for,
    spiffe_id,
)
from kmesh.testing import free_port
from kmesh.wire.tls import client_context

from .material import MESH, call, echo_app, mesh_ca, workload_cert
from .test_sidecar_runtime import client_config, runtime, server_config

SNI = sni_for(MESH, "echo")


def ingress_config(endpoints: list[Endpoint]) -> ProxyConfig:
    route = SniRoute(mesh=MESH, service="echo", tags={}, endpoints=endpoints)
    return seal(
        ProxyConfig(
            proxy_type="ingress", name="ingress-1", zone="b", ingress=IngressConfig(routes={SNI: route})
        )
    )


@dataclass
class Zone:
    ca: CaBundle
    ingress: ProxyRuntime
    ingress_port: int
    inbound_ports: list[int]


@contextlib.asynccontextmanager
async def ingress_runtime(config: ProxyConfig, port: int) -> AsyncIterator[ProxyRuntime]:
    doc = {"type": "ZoneIngress", "name": "ingress-1", "networking": {"address": "127.0.0.1", "port": port}}
    proxy = ProxyRuntime("ingress", doc)
    try:
        await proxy.apply(config)
        assert proxy.ready() == (True, "ready")
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def zone() -> AsyncIterator[Zone]:
    """Zone b: two echo instances behind their sidecars, and the zone's ingress."""
    ca = mesh_ca()
    allowed = [spiffe_id(MESH, "client")]
    async with contextlib.AsyncExitStack() as stack:
        inbound_ports = []
        for name in ("echo-b-1", "echo-b-2"):
            app_port = await stack.enter_async_context(echo_app(name))
            inbound = free_port()
            await stack.enter_async_context(
                runtime(server_config(app_port, inbound, allowed=allowed), ca, "echo")
            )
            inbound_ports.append(inbound)
        local = [
            Endpoint(address="127.0.0.1", port=p, zone="b", spiffe_id=spiffe_id(MESH, "echo"))
            for p in inbound_ports
        ]
        port = free_port()
        ingress = await stack.enter_async_context(ingress_runtime(ingress_config(local), port))
        yield Zone(ca, ingress, port, inbound_ports)


def via_ingress(zone: Zone, *, weight: int = 2) -> Endpoint:
    return Endpoint(
        address="127.0.0.1",
        port=zone.ingress_port,
        weight=weight,
        zone="b",
        via="ingress",
        sni=SNI,
        spiffe_id=spiffe_id(MESH, "echo"),
    )


async def test_a_call_crosses_the_ingress_encrypted_and_is_balanced_over_local_instances(zone: Zone) -> None:
    out = free_port()
    async with runtime(client_config(out, [via_ingress(zone)]), zone.ca, "client"):
        answers = sorted([(await call(out)).split()[0] for _ in range(4)])
    assert answers == [b"echo-b-1", b"echo-b-1", b"echo-b-2", b"echo-b-2"]
    listener = zone.ingress.stats.listener("ingress")
    assert listener.cx_total == 4
    assert listener.bytes_received > 0
    assert listener.bytes_sent > 0
    route = zone.ingress.stats.cluster(f"{MESH}/echo")
    assert route.lb_picks == {f"127.0.0.1:{p}": 2 for p in zone.inbound_ports}


async def test_the_ingress_holds_no_certificate(zone: Zone) -> None:
    assert zone.ingress.tls.meshes == []
    assert zone.ingress.stats.certificates == 0
    assert zone.ingress.config_dump()["certificates"] == {}


async def test_a_plain_tcp_client_is_closed_and_counted(zone: Zone) -> None:
    assert await call(zone.ingress_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    assert zone.ingress.stats.listener("ingress").not_tls == 1


async def test_a_tls_client_with_an_unknown_sni_is_closed_and_counted(zone: Zone) -> None:
    cert = workload_cert(zone.ca, "client")
    ctx = client_context(
        ca_pem=zone.ca.cert_pem,
        server_hostname_check=False,
        client_cert_pem=cert.cert_pem,
        client_key_pem=cert.key_pem,
    )
    with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
        await asyncio.open_connection("127.0.0.1", zone.ingress_port, ssl=ctx, server_hostname="nope.kmesh")
    assert zone.ingress.stats.listener("ingress").no_route == 1


async def test_a_client_that_never_finishes_its_hello_is_closed_after_the_sniff_timeout() -> None:
    stats = ProxyStats()
    gateway = SniGateway("ingress", "127.0.0.1", 0, stats, sniff_timeout_s=0.2)
    gateway.update(ingress_config([]))
    await gateway.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            writer.write(b"\x16\x03\x01\x02\x00")  # a record header, and then nothing
            await writer.drain()
            # Closed with our bytes unread, the socket may answer with a reset instead of a FIN.
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    finally:
        gateway.close()
        await gateway.abort_all()
    assert stats.listener("ingress").sniff_timeouts == 1


async def test_new_routes_apply_while_a_passthrough_connection_runs(zone: Zone) -> None:
    out = free_port()
    async with runtime(client_config(out, [via_ingress(zone)], lb=LbConfig()), zone.ca, "client"):
        reader, writer = await asyncio.open_connection("127.0.0.1", out)
        try:
            writer.write(b"one\n")
            first = await reader.readline()
            assert first.endswith(b" one\n")
            await zone.ingress.apply(ingress_config([]))  # the route loses every endpoint
            writer.write(b"two\n")
            assert (await reader.readline()).endswith(b" two\n")
            assert await call(out) == b""  # a new connection has nowhere to go
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
