"""A zone egress runtime on loopback with real mTLS, fed configs and certificates directly (no control
plane), between sidecar runtimes and apps.

What is checked:
- A MeshExternalService route: the sidecar dials the egress with mTLS (the external SNI, the egress's
  SPIFFE id checked), the egress terminates it with its certificate of the mesh and originates plain TCP
  to the external app; the bytes arrive and are counted on the egress's external cluster.
- TLS origination to a TLS-only external app: ``SkipAll``, the app's CA given inline with its
  ``server_name``, and a wrong ``server_name`` (refused, counted, the caller closed).
- A passthrough route (as toward another zone's ingress): the bytes pass still encrypted — the egress holds
  no certificate at all — and the echo sidecar's inbound sees and authorizes the original client identity:
  an allowed client gets through, another one is denied there.
- An unknown SNI, no SNI and bytes that are not TLS are closed and counted on the ``egress`` listener.
- MeshTrafficPermission on an external route: an allowed client reaches the external app (a shadow-denied
  one too, counted), a denied one is closed after the handshake and counted as ``denied`` on the
  ``egress`` listener, and nothing is dialled for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import msgspec
import pytest

from kmesh.pki import CaBundle, generate_self_signed_server_cert
from kmesh.proxy._runtime import ProxyRuntime
from kmesh.proxyconfig import (
    Cluster,
    EgressConfig,
    Endpoint,
    ExternalRoute,
    InboundConfig,
    ProxyConfig,
    SniRoute,
    UpstreamTls,
    external_sni,
    seal,
    sni_for,
    spiffe_id,
)
from kmesh.testing import free_port

from .material import MESH, call, echo_app, mesh_ca, sidecar_config, tls_echo_app, tls_probe, workload_cert

EGRESS_ID = spiffe_id(MESH, "zone-egress")
EXT = "httpbin"
EXT_SNI = external_sni(MESH, EXT)
ECHO_SNI = sni_for(MESH, "echo")


def egress_config(
    *, externals: dict[str, ExternalRoute] | None = None, routes: dict[str, SniRoute] | None = None
) -> ProxyConfig:
    return seal(
        ProxyConfig(
            proxy_type="egress",
            name="e",
            zone="z",
            egress=EgressConfig(routes=routes or {}, external_services=externals or {}),
        )
    )


def external_route(app_port: int, tls: UpstreamTls | None = None) -> ExternalRoute:
    return ExternalRoute(
        mesh=MESH,
        name=EXT,
        identity=EGRESS_ID,
        endpoints=[Endpoint(address="127.0.0.1", port=app_port, via="external")],
        upstream_tls=tls,
    )


def client_config(outbound_port: int, cluster: Cluster, *, service: str = "client") -> ProxyConfig:
    return sidecar_config(service, outbound_port=outbound_port, cluster=cluster)


def external_cluster(egress_port: int) -> Cluster:
    return Cluster(
        name=EXT,
        service=EXT,
        tags={"kuma.io/service": EXT},
        external=True,
        mtls=True,
        endpoints=[
            Endpoint(address="127.0.0.1", port=egress_port, via="egress", sni=EXT_SNI, spiffe_id=EGRESS_ID)
        ],
    )


def echo_via_egress_cluster(egress_port: int) -> Cluster:
    return Cluster(
        name="echo",
        service="echo",
        tags={"kuma.io/service": "echo"},
        mtls=True,
        endpoints=[
            Endpoint(
                address="127.0.0.1",
                port=egress_port,
                via="egress",
                sni=ECHO_SNI,
                spiffe_id=spiffe_id(MESH, "echo"),
            )
        ],
    )


@contextlib.asynccontextmanager
async def sidecar(config: ProxyConfig, ca: CaBundle, service: str) -> AsyncIterator[ProxyRuntime]:
    proxy = ProxyRuntime("sidecar", {"type": "Dataplane", "name": config.name, "mesh": MESH})
    try:
        await proxy.on_certificate(workload_cert(ca, service))
        await proxy.apply(config)
        assert proxy.ready() == (True, "ready")
        yield proxy
    finally:
        await proxy.close()


@dataclass
class Egress:
    port: int
    runtime: ProxyRuntime


@contextlib.asynccontextmanager
async def egress(config: ProxyConfig, ca: CaBundle | None) -> AsyncIterator[Egress]:
    """A zone egress on a free port; with ``ca`` it holds a certificate for ``zone-egress`` of the mesh."""
    port = free_port()
    proxy = ProxyRuntime(
        "egress", {"type": "ZoneEgress", "name": "e", "networking": {"address": "127.0.0.1", "port": port}}
    )
    try:
        if ca is not None:
            await proxy.on_certificate(workload_cert(ca, "zone-egress"))
        await proxy.apply(config)
        assert proxy.ready() == (True, "ready")
        assert proxy.gateway is not None
        assert proxy.gateway.port == port
        yield Egress(port, proxy)
    finally:
        await proxy.close()


async def until(predicate: Callable[[], bool], what: str, *, timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` until it holds: a connection's end is counted after the caller saw it close. The
    bound only turns a hang into a failure naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def ca() -> CaBundle:
    return mesh_ca()


# -- external services --------------------------------------------------------------------------------------


async def test_a_sidecar_reaches_an_external_service_through_the_egress(ca: CaBundle) -> None:
    async with echo_app("ext") as app_port, egress(egress_config(), ca) as gw:
        await gw.runtime.apply(egress_config(externals={EXT_SNI: external_route(app_port)}))
        out = free_port()
        async with sidecar(client_config(out, external_cluster(gw.port)), ca, "client") as client:
            assert await call(out, b"hello\n") == b"ext hello\n"
            assert await call(out, b"again\n") == b"ext again\n"
            assert client.stats.cluster(EXT).identity_mismatch == 0
            assert client.stats.cluster(EXT).lb_picks == {f"127.0.0.1:{gw.port}": 2}
        listener = gw.runtime.stats.listener("egress")
        assert listener.cx_total == 2
        assert listener.no_route == 0
        assert listener.identity_rejected == 0
        external = gw.runtime.stats.cluster(f"{MESH}/external/{EXT}")
        assert external.cx_total == 2
        await until(lambda: listener.cx_active == 0 and external.cx_active == 0, "both relays to end")
        assert listener.bytes_received == len(b"hello\n") + len(b"again\n")
        assert listener.bytes_sent == len(b"ext hello\n") + len(b"ext again\n")
        # The external cluster counts what went to and came from the external app, as a sidecar's
        # clusters and the egress's passthrough routes do.
        assert external.bytes_sent == len(b"hello\n") + len(b"again\n")
        assert external.bytes_received == len(b"ext hello\n") + len(b"ext again\n")


async def test_a_sidecar_refuses_an_egress_presenting_another_identity(ca: CaBundle) -> None:
    async with echo_app("ext") as app_port:
        port = free_port()
        proxy = ProxyRuntime(
            "egress",
            {"type": "ZoneEgress", "name": "e", "networking": {"address": "127.0.0.1", "port": port}},
        )
        try:
            await proxy.on_certificate(workload_cert(ca, "impostor"))
            await proxy.apply(egress_config(externals={EXT_SNI: external_route(app_port)}))
            out = free_port()
            async with sidecar(client_config(out, external_cluster(port)), ca, "client") as client:
                assert await call(out) == b""
                assert client.stats.cluster(EXT).identity_mismatch == 1
        finally:
            await proxy.close()


async def test_an_egress_without_a_certificate_of_the_mesh_closes_external_calls(ca: CaBundle) -> None:
    async with echo_app("ext") as app_port:
        config = egress_config(externals={EXT_SNI: external_route(app_port)})
        async with egress(config, None) as gw:
            out = free_port()
            async with sidecar(client_config(out, external_cluster(gw.port)), ca, "client"):
                assert await call(out) == b""
            assert gw.runtime.stats.listener("egress").tls_errors == 1


@pytest.mark.parametrize("mode", ["SkipAll", "inline-ca"])
async def test_the_egress_originates_tls_to_an_external_service(ca: CaBundle, mode: str) -> None:
    cert_pem, key_pem = generate_self_signed_server_cert(["ext.example"], [])
    tls = (
        UpstreamTls(verification="SkipAll")
        if mode == "SkipAll"
        else UpstreamTls(server_name="ext.example", ca_cert_inline=cert_pem)
    )
    async with (
        tls_echo_app("tls-ext", cert_pem, key_pem) as app_port,
        egress(egress_config(externals={EXT_SNI: external_route(app_port, tls)}), ca) as gw,
    ):
        out = free_port()
        async with sidecar(client_config(out, external_cluster(gw.port)), ca, "client"):
            assert await call(out, b"secret\n") == b"tls-ext secret\n"
        external = gw.runtime.stats.cluster(f"{MESH}/external/{EXT}")
        assert external.cx_total == 1
        assert external.connect_failures == 0


async def test_tls_origination_with_the_wrong_server_name_is_refused(ca: CaBundle) -> None:
    cert_pem, key_pem = generate_self_signed_server_cert(["ext.example"], [])
    tls = UpstreamTls(server_name="other.example", ca_cert_inline=cert_pem)
    async with (
        tls_echo_app("tls-ext", cert_pem, key_pem) as app_port,
        egress(egress_config(externals={EXT_SNI: external_route(app_port, tls)}), ca) as gw,
    ):
        out = free_port()
        async with sidecar(client_config(out, external_cluster(gw.port)), ca, "client"):
            assert await call(out) == b""
        assert gw.runtime.stats.listener("egress").upstream_failures == 1
        assert gw.runtime.stats.cluster(f"{MESH}/external/{EXT}").connect_failures == 1


async def test_plain_origination_to_a_tls_only_app_gets_no_answer(ca: CaBundle) -> None:
    """Without ``upstream_tls`` the egress speaks plain TCP: the TLS-only app cannot answer a line (this
    is what proves the origination tests above really went over TLS)."""
    cert_pem, key_pem = generate_self_signed_server_cert(["ext.example"], [])
    async with (
        tls_echo_app("tls-ext", cert_pem, key_pem) as app_port,
        egress(egress_config(externals={EXT_SNI: external_route(app_port)}), ca) as gw,
    ):
        out = free_port()
        async with sidecar(client_config(out, external_cluster(gw.port)), ca, "client"):
            assert await call(out, b"secret\n") == b""


# -- passthrough --------------------------------------------------------------------------------------------


def echo_sidecar_config(app_port: int, inbound_port: int) -> ProxyConfig:
    return seal(
        ProxyConfig(
            proxy_type="sidecar",
            mesh=MESH,
            name="echo-1",
            zone="other",
            mtls_enabled=True,
            identity=spiffe_id(MESH, "echo"),
            inbounds=[
                InboundConfig(
                    address="127.0.0.1",
                    port=inbound_port,
                    service_address="127.0.0.1",
                    service_port=app_port,
                    service="echo",
                    tags={"kuma.io/service": "echo"},
                    allowed_spiffe_ids=[spiffe_id(MESH, "client")],
                )
            ],
        )
    )


@pytest.mark.parametrize(("service", "answer"), [("client", b"echo hi\n"), ("intruder", b"")])
async def test_a_passthrough_route_carries_the_callers_own_mtls(
    ca: CaBundle, service: str, answer: bytes
) -> None:
    inbound_port = free_port()
    route = SniRoute(
        mesh=MESH,
        service="echo",
        tags={"kuma.io/service": "echo"},
        endpoints=[Endpoint(address="127.0.0.1", port=inbound_port)],
    )
    async with (
        echo_app("echo") as app_port,
        sidecar(echo_sidecar_config(app_port, inbound_port), ca, "echo") as echo,
        egress(egress_config(routes={ECHO_SNI: route}), None) as gw,  # no certificate: it cannot decrypt
    ):
        out = free_port()
        async with sidecar(
            client_config(out, echo_via_egress_cluster(gw.port), service=service), ca, service
        ):
            assert await call(out) == answer
        inbound = echo.stats.listener(f"inbound:{inbound_port}")
        assert inbound.cx_total == 1
        assert inbound.denied == (0 if answer else 1)
        routed = gw.runtime.stats.cluster(f"{MESH}/echo")
        assert routed.cx_total == 1
        assert routed.lb_picks == {f"127.0.0.1:{inbound_port}": 1}
        await until(lambda: routed.cx_active == 0, "the passthrough relay to end")
        if answer:
            # The egress moved the TLS records, so it saw more bytes than the line each way.
            assert routed.bytes_sent > len(b"hi\n")
            assert routed.bytes_received > len(answer)


# -- what the egress refuses --------------------------------------------------------------------------------


@pytest.mark.parametrize("server_name", ["unknown.example", None])
async def test_an_unknown_or_missing_sni_is_closed_and_counted(ca: CaBundle, server_name: str | None) -> None:
    async with echo_app("ext") as app_port:
        config = egress_config(externals={EXT_SNI: external_route(app_port)})
        async with egress(config, ca) as gw:
            assert await tls_probe(gw.port, server_name) == b""
            listener = gw.runtime.stats.listener("egress")
            assert listener.no_route == 1
            assert listener.not_tls == 0
            assert gw.runtime.stats.cluster(f"{MESH}/external/{EXT}").cx_total == 0


async def test_bytes_that_are_not_tls_are_closed_and_counted(ca: CaBundle) -> None:
    async with egress(egress_config(), ca) as gw:
        assert await call(gw.port, b"GET / HTTP/1.1\r\n\r\n") == b""
        listener = gw.runtime.stats.listener("egress")
        assert listener.not_tls == 1
        assert listener.no_route == 0


# -- MeshTrafficPermission on external routes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "answer", "denied", "shadow"),
    [
        ("client", b"ext hi\n", 0, 0),
        ("trial", b"ext hi\n", 0, 1),
        ("intruder", b"", 1, 0),
    ],
)
async def test_the_egress_authorizes_clients_of_an_external_service(
    ca: CaBundle, service: str, answer: bytes, denied: int, shadow: int
) -> None:
    async with echo_app("ext") as app_port:
        route = msgspec.structs.replace(
            external_route(app_port),
            allowed_spiffe_ids=[spiffe_id(MESH, "client"), spiffe_id(MESH, "trial")],
            denied_spiffe_ids=[spiffe_id(MESH, "intruder")],
            shadow_denied_spiffe_ids=[spiffe_id(MESH, "trial")],
            default_action="Deny",
        )
        async with egress(egress_config(externals={EXT_SNI: route}), ca) as gw:
            out = free_port()
            async with sidecar(client_config(out, external_cluster(gw.port), service=service), ca, service):
                assert await call(out) == answer
            listener = gw.runtime.stats.listener("egress")
            external = gw.runtime.stats.cluster(f"{MESH}/external/{EXT}")
            await until(lambda: listener.cx_active == 0, "the connection to end")
            assert (listener.cx_total, listener.denied, listener.shadow_denied) == (1, denied, shadow)
            assert (listener.identity_rejected, listener.tls_errors) == (0, 0)
            assert external.cx_total == (0 if denied else 1)
