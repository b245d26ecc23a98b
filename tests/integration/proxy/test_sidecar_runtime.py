"""Sidecar runtimes on loopback with real mTLS, fed configs and certificates directly (no control plane):
app → outbound listener → (mTLS, SPIFFE check) → inbound listener → (MeshTrafficPermission) → app.

What is checked: the round trip and its counters; a denied caller is closed before reaching the app and
counted; a peer presenting another identity is refused and counted; a dead endpoint is failed over to the
next priority without the app seeing an error; a new certificate and a new config apply while an
established connection keeps working; a bind conflict refuses the config and keeps the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest

from kmesh.pki import CaBundle
from kmesh.proxy._runtime import ProxyRuntime
from kmesh.proxy._tls import peer_identity
from kmesh.proxyconfig import (
    CircuitBreakerConfig,
    Cluster,
    ConnectionLimitsConfig,
    Endpoint,
    InboundConfig,
    LbConfig,
    OutboundConfig,
    ProxyConfig,
    TimeoutConfig,
    seal,
    spiffe_id,
)
from kmesh.testing import free_port

from .material import MESH, call, echo_app, mesh_ca, sidecar_config, workload_cert


def server_config(
    app_port: int, inbound_port: int, *, allowed: list[str], service: str = "echo"
) -> ProxyConfig:
    inbound = InboundConfig(
        address="127.0.0.1",
        port=inbound_port,
        service_address="127.0.0.1",
        service_port=app_port,
        service=service,
        tags={"kuma.io/service": service},
        allowed_spiffe_ids=allowed,
    )
    return sidecar_config(service, inbound=inbound)


def client_config(
    outbound_port: int, endpoints: list[Endpoint], *, service: str = "client", lb: LbConfig | None = None
) -> ProxyConfig:
    cluster = Cluster(
        name="echo",
        service="echo",
        tags={"kuma.io/service": "echo"},
        mtls=True,
        endpoints=endpoints,
        lb=lb or LbConfig(),
    )
    return sidecar_config(service, outbound_port=outbound_port, cluster=cluster)


def endpoint(port: int, *, identity: str = "echo", priority: int = 0) -> Endpoint:
    return Endpoint(address="127.0.0.1", port=port, priority=priority, spiffe_id=spiffe_id(MESH, identity))


@dataclass
class Mesh:
    ca: CaBundle
    app_port: int
    inbound_port: int
    server: ProxyRuntime


@contextlib.asynccontextmanager
async def runtime(config: ProxyConfig, ca: CaBundle, service: str) -> AsyncIterator[ProxyRuntime]:
    proxy = ProxyRuntime("sidecar", {"type": "Dataplane", "name": config.name, "mesh": MESH})
    try:
        await proxy.on_certificate(workload_cert(ca, service))
        await proxy.apply(config)
        assert proxy.ready() == (True, "ready")
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    ca = mesh_ca()
    async with echo_app() as app_port:
        inbound_port = free_port()
        config = server_config(app_port, inbound_port, allowed=[spiffe_id(MESH, "client")])
        async with runtime(config, ca, "echo") as server:
            yield Mesh(ca, app_port, inbound_port, server)


async def test_a_call_crosses_both_sidecars_with_mtls_and_is_counted(mesh: Mesh) -> None:
    out = free_port()
    async with runtime(client_config(out, [endpoint(mesh.inbound_port)]), mesh.ca, "client") as client:
        assert await call(out, b"hello\n") == b"echo hello\n"
        inbound = mesh.server.stats.listener(f"inbound:{mesh.inbound_port}")
        cluster = client.stats.cluster("echo")
        assert cluster.lb_picks == {f"127.0.0.1:{mesh.inbound_port}": 1}
        assert inbound.cx_total == 1
        assert inbound.denied == 0


async def test_a_caller_that_no_permission_allows_is_closed_before_the_app(mesh: Mesh) -> None:
    out = free_port()
    async with runtime(
        client_config(out, [endpoint(mesh.inbound_port)], service="intruder"), mesh.ca, "intruder"
    ):
        assert await call(out) == b""
    assert mesh.server.stats.listener(f"inbound:{mesh.inbound_port}").denied == 1


async def test_a_peer_with_another_identity_is_refused_and_counted(mesh: Mesh) -> None:
    out = free_port()
    wrong = [endpoint(mesh.inbound_port, identity="billing")]
    async with runtime(client_config(out, wrong), mesh.ca, "client") as client:
        assert await call(out) == b""
        cluster = client.stats.cluster("echo")
        assert cluster.identity_mismatch == 1
        assert client.stats.listener(f"outbound:127.0.0.1:{out}").upstream_failures == 1


async def test_a_dead_local_endpoint_fails_over_to_the_next_priority(mesh: Mesh) -> None:
    out = free_port()
    dead = free_port()
    endpoints = [endpoint(dead, priority=0), endpoint(mesh.inbound_port, priority=1)]
    config = client_config(out, endpoints, lb=LbConfig(locality_aware=True))
    async with runtime(config, mesh.ca, "client") as client:
        answers = [await call(out) for _ in range(5)]
        assert answers == [b"echo hi\n"] * 5
        cluster = client.stats.cluster("echo")
        assert cluster.connect_failures == 1  # the first failure ejected the dead endpoint
        assert cluster.lb_picks[f"127.0.0.1:{mesh.inbound_port}"] == 5


async def test_new_certificates_and_configs_apply_without_dropping_a_connection(mesh: Mesh) -> None:
    out = free_port()
    async with runtime(client_config(out, [endpoint(mesh.inbound_port)]), mesh.ca, "client") as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", out)
        try:
            writer.write(b"one\n")
            assert await reader.readline() == b"echo one\n"
            # Both sides rotate their certificates, and the client gets a new config (a second listener).
            await mesh.server.on_certificate(workload_cert(mesh.ca, "echo", request_id="r2"))
            await client.on_certificate(workload_cert(mesh.ca, "client", request_id="r2"))
            second = free_port()
            config = client_config(out, [endpoint(mesh.inbound_port)])
            await client.apply(
                seal(
                    ProxyConfig(
                        **{
                            **{f: getattr(config, f) for f in config.__struct_fields__},
                            "outbounds": [
                                *config.outbounds,
                                OutboundConfig(
                                    address="127.0.0.1",
                                    port=second,
                                    service="echo",
                                    tags={"kuma.io/service": "echo"},
                                    cluster="echo",
                                ),
                            ],
                        }
                    )
                )
            )
            writer.write(b"two\n")
            assert await reader.readline() == b"echo two\n"
            assert await call(second) == b"echo hi\n"
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    # The rotated server certificate is what a new handshake sees.
    assert mesh.server.stats.certificates == 2


async def test_the_inbound_presents_the_newest_certificate_after_a_rotation(mesh: Mesh) -> None:
    import ssl

    client_cert = workload_cert(mesh.ca, "client")
    from kmesh.wire.tls import client_context

    ctx = client_context(
        ca_pem=mesh.ca.cert_pem,
        server_hostname_check=False,
        client_cert_pem=client_cert.cert_pem,
        client_key_pem=client_cert.key_pem,
    )

    async def serial() -> int:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", mesh.inbound_port, ssl=ctx, server_hostname="x"
        )
        try:
            obj = writer.get_extra_info("ssl_object")
            assert peer_identity(obj) == [spiffe_id(MESH, "echo")]
            der = obj.getpeercert(binary_form=True)
            from cryptography import x509

            return int(x509.load_der_x509_certificate(der).serial_number)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    first = await serial()
    await mesh.server.on_certificate(workload_cert(mesh.ca, "echo", request_id="r2"))
    assert await serial() != first


async def test_a_config_whose_listener_cannot_bind_is_refused_and_the_old_one_stays(mesh: Mesh) -> None:
    out = free_port()
    async with runtime(client_config(out, [endpoint(mesh.inbound_port)]), mesh.ca, "client") as client:
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            busy = taken.getsockname()[1]
            old = client.config
            with pytest.raises(OSError, match=f"127.0.0.1:{busy}"):
                await client.apply(client_config(busy, [endpoint(mesh.inbound_port)]))
            assert client.config is old
            assert await call(out) == b"echo hi\n"
        finally:
            taken.close()


def with_cluster(config: ProxyConfig, **changes: object) -> ProxyConfig:
    """``config`` with its one cluster changed."""
    cluster = msgspec.structs.replace(config.clusters[0], **changes)
    return seal(msgspec.structs.replace(config, clusters=[cluster]))


async def test_mesh_timeout_idle_timeout_closes_an_idle_connection(mesh: Mesh) -> None:
    out = free_port()
    config = with_cluster(
        client_config(out, [endpoint(mesh.inbound_port)]), timeout=TimeoutConfig(idle_timeout_s=0.3)
    )
    async with runtime(config, mesh.ca, "client"):
        reader, writer = await asyncio.open_connection("127.0.0.1", out)
        try:
            writer.write(b"one\n")
            assert await reader.readline() == b"echo one\n"
            # Nothing crosses for longer than the idle timeout: the sidecar closes the pair.
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 30) == b""
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def test_a_circuit_breaker_connection_limit_refuses_and_counts_the_overflow(mesh: Mesh) -> None:
    out = free_port()
    breaker = CircuitBreakerConfig(connection_limits=ConnectionLimitsConfig(max_connections=1))
    config = with_cluster(client_config(out, [endpoint(mesh.inbound_port)]), circuit_breaker=breaker)
    async with runtime(config, mesh.ca, "client") as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", out)
        try:
            writer.write(b"one\n")
            assert await reader.readline() == b"echo one\n"
            assert await call(out) == b""  # the second concurrent connection is over the limit
            assert client.stats.cluster("echo").cx_overflow == 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

        # Once the first one ended (the sidecar saw it close), there is room again.
        stats = client.stats.cluster("echo")
        for _ in range(600):
            if stats.cx_active == 0:
                break
            await asyncio.sleep(0.05)
        assert await call(out) == b"echo hi\n"
