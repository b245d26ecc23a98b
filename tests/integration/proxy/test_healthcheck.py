"""Active health checks (MeshHealthCheck) in sidecar runtimes on loopback, with real mTLS where the cluster
has it: app → outbound listener → endpoints that a ``HealthChecker`` probes.

What is checked: an endpoint that stops listening turns unhealthy and new connections go to the other one
before any of them has to fail on it, and it comes back when it listens again; the thresholds hold; a peer
with another identity fails a mesh probe (the handshake must prove the endpoint's identity); the HTTP check
follows the app's status, in plain TCP and through the server's sidecar; the TCP check's send/receive;
removing ``health_check`` marks every endpoint healthy again; ``close()`` leaves no task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import msgspec
import pytest

from kmesh.pki import CaBundle
from kmesh.proxy._runtime import ProxyRuntime
from kmesh.proxyconfig import (
    Cluster,
    Endpoint,
    HealthCheckConfig,
    HttpCheckConfig,
    InboundConfig,
    OutboundConfig,
    ProxyConfig,
    TcpCheckConfig,
    seal,
    spiffe_id,
)
from kmesh.testing import free_port

from .material import MESH, call, echo_app, mesh_ca, workload_cert

FAST = HealthCheckConfig(interval_s=0.05, timeout_s=5.0, unhealthy_threshold=2, healthy_threshold=2)


# -- configs ------------------------------------------------------------------------------------------------


def server_config(app_port: int, inbound_port: int, name: str) -> ProxyConfig:
    return seal(
        ProxyConfig(
            proxy_type="sidecar",
            mesh=MESH,
            name=name,
            zone="z",
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


def client_config(
    outbound_port: int,
    ports: list[int],
    check: HealthCheckConfig | None,
    *,
    mtls: bool = True,
    identity: str = "echo",
) -> ProxyConfig:
    endpoints = [Endpoint(address="127.0.0.1", port=p, spiffe_id=spiffe_id(MESH, identity)) for p in ports]
    return seal(
        ProxyConfig(
            proxy_type="sidecar",
            mesh=MESH,
            name="client-1",
            zone="z",
            mtls_enabled=mtls,
            identity=spiffe_id(MESH, "client"),
            outbounds=[
                OutboundConfig(
                    address="127.0.0.1",
                    port=outbound_port,
                    service="echo",
                    tags={"kuma.io/service": "echo"},
                    cluster="echo",
                )
            ],
            clusters=[
                Cluster(
                    name="echo",
                    service="echo",
                    tags={"kuma.io/service": "echo"},
                    mtls=mtls,
                    endpoints=endpoints,
                    health_check=check,
                )
            ],
        )
    )


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


def healthy(client: ProxyRuntime, port: int) -> bool:
    states = client.config_dump()["upstreams"]["echo"]
    (state,) = [s for s in states if s["port"] == port]
    return bool(state["healthy"])


async def until(
    condition: Callable[[], bool], what: str, *, invariant: Callable[[], None] | None = None
) -> None:
    """Poll ``condition`` (checking ``invariant`` at every poll) for at most 20 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20.0
    while True:
        if invariant is not None:
            invariant()
        if condition():
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def checker_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("health-check") and not t.done()]


# -- mesh endpoints -----------------------------------------------------------------------------------------


async def test_a_dead_endpoint_turns_unhealthy_before_any_connection_fails_on_it_and_comes_back() -> None:
    ca = mesh_ca()
    async with echo_app("a") as app_a, echo_app("b") as app_b, contextlib.AsyncExitStack() as stack:
        inbound_a, inbound_b = free_port(), free_port()
        out = free_port()
        await stack.enter_async_context(runtime(server_config(app_a, inbound_a, "echo-a"), ca, "echo"))
        async with (
            runtime(server_config(app_b, inbound_b, "echo-b"), ca, "echo"),
            runtime(client_config(out, [inbound_a, inbound_b], FAST), ca, "client") as client,
        ):
            stats = client.stats.cluster("echo")
            await until(lambda: stats.health_checks_passed >= 4, "both endpoints probed twice")
            assert sorted([await call(out) for _ in range(4)]) == [b"a hi\n"] * 2 + [b"b hi\n"] * 2

            await stack.aclose()  # A stops listening

            def threshold_holds() -> None:
                # Only A fails, and the counter moves with the verdict in one step: below the threshold
                # A is still healthy.
                if stats.health_checks_failed < FAST.unhealthy_threshold:
                    assert healthy(client, inbound_a)

            await until(lambda: not healthy(client, inbound_a), "A unhealthy", invariant=threshold_holds)
            assert stats.health_checks_failed >= FAST.unhealthy_threshold
            assert healthy(client, inbound_b)
            picks_a = stats.lb_picks[f"127.0.0.1:{inbound_a}"]
            assert [await call(out) for _ in range(6)] == [b"b hi\n"] * 6
            assert stats.connect_failures == 0  # no caller's connection had to fail on A
            assert stats.lb_picks[f"127.0.0.1:{inbound_a}"] == picks_a

            async with runtime(server_config(app_a, inbound_a, "echo-a"), ca, "echo"):  # A listens again
                await until(lambda: healthy(client, inbound_a), "A healthy again")
                answers = [await call(out) for _ in range(4)]
                assert sorted(answers) == [b"a hi\n"] * 2 + [b"b hi\n"] * 2
            assert stats.health_check_changes == 2
            assert stats.connect_failures == 0


async def test_a_peer_presenting_another_identity_fails_the_mesh_check() -> None:
    ca = mesh_ca()
    async with echo_app() as app_port:
        inbound = free_port()
        check = msgspec.structs.replace(FAST, unhealthy_threshold=1)
        async with (
            runtime(server_config(app_port, inbound, "echo-1"), ca, "echo") as server,
            runtime(client_config(free_port(), [inbound], check, identity="billing"), ca, "client") as client,
        ):
            stats = client.stats.cluster("echo")
            await until(lambda: not healthy(client, inbound), "the endpoint unhealthy")
            assert stats.health_checks_passed == 0
            assert stats.identity_mismatch == 0  # counted for connections only
            # The peer listened and completed the handshake: only the identity failed.
            assert server.stats.listener(f"inbound:{inbound}").tls_errors == 0


# -- plain endpoints and the kinds of check -----------------------------------------------------------------


async def test_thresholds_hold_both_ways_on_a_plain_endpoint() -> None:
    check = msgspec.structs.replace(FAST, unhealthy_threshold=3, healthy_threshold=3)
    app_port = free_port()
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", app_port)
    async with runtime(
        client_config(free_port(), [app_port], check, mtls=False), mesh_ca(), "client"
    ) as client:
        stats = client.stats.cluster("echo")
        await until(lambda: stats.health_checks_passed >= 3, "three probes passed")
        assert healthy(client, app_port)
        server.close()
        await server.wait_closed()

        def failures_hold() -> None:
            if stats.health_checks_failed < check.unhealthy_threshold:
                assert healthy(client, app_port)

        await until(lambda: not healthy(client, app_port), "unhealthy", invariant=failures_hold)
        assert stats.health_checks_failed >= check.unhealthy_threshold

        passed = stats.health_checks_passed
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", app_port)
        try:

            def passes_hold() -> None:
                if stats.health_checks_passed - passed < check.healthy_threshold:
                    assert not healthy(client, app_port)

            await until(lambda: healthy(client, app_port), "healthy again", invariant=passes_hold)
            assert stats.health_checks_passed - passed >= check.healthy_threshold
        finally:
            server.close()
            await server.wait_closed()


@dataclass
class HttpApp:
    port: int
    status: int = 200
    requests: list[bytes] = field(default_factory=list)


async def _answer(app: HttpApp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        app.requests.append(head)
        writer.write(f"HTTP/1.1 {app.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def http_app() -> AsyncIterator[HttpApp]:
    """A tiny HTTP/1.1 server answering every request with ``app.status``; it records each request head."""
    app = HttpApp(port=0)
    server = await asyncio.start_server(lambda r, w: _answer(app, r, w), "127.0.0.1", 0)
    app.port = server.sockets[0].getsockname()[1]
    try:
        yield app
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "mesh"])
async def test_the_http_check_follows_the_apps_status(mtls: bool) -> None:
    ca = mesh_ca()
    check = msgspec.structs.replace(
        FAST,
        unhealthy_threshold=1,
        healthy_threshold=1,
        http=HttpCheckConfig(
            path="/healthz", expected_statuses=[200, 204], request_headers_to_add={"X-Probe": "yes"}
        ),
    )
    async with http_app() as app, contextlib.AsyncExitStack() as stack:
        port = app.port
        if mtls:  # the check goes through the server's sidecar to the app
            port = free_port()
            await stack.enter_async_context(runtime(server_config(app.port, port, "echo-1"), ca, "echo"))
        client = await stack.enter_async_context(
            runtime(client_config(free_port(), [port], check, mtls=mtls), ca, "client")
        )
        stats = client.stats.cluster("echo")
        await until(lambda: stats.health_checks_passed >= 1, "a probe passed")
        head = app.requests[0]
        assert head.startswith(b"GET /healthz HTTP/1.1\r\n")
        assert b"\r\nHost: echo\r\n" in head
        assert b"\r\nX-Probe: yes\r\n" in head
        app.status = 503
        await until(lambda: not healthy(client, port), "unhealthy on 503")
        app.status = 204
        await until(lambda: healthy(client, port), "healthy on 204")
        assert stats.health_check_changes == 2


async def test_the_tcp_check_sends_and_expects_blocks_in_order() -> None:
    good = TcpCheckConfig(send=b"ping\n", receive=[b"echo", b"ping"])
    bad = TcpCheckConfig(send=b"ping\n", receive=[b"ping", b"echo"])  # both arrive, not in this order
    check = msgspec.structs.replace(FAST, timeout_s=0.5, unhealthy_threshold=1, healthy_threshold=1, tcp=good)
    async with echo_app() as app_port:
        out = free_port()
        config = client_config(out, [app_port], check, mtls=False)
        async with runtime(config, mesh_ca(), "client") as client:
            stats = client.stats.cluster("echo")
            await until(lambda: stats.health_checks_passed >= 2, "probes passed")
            assert healthy(client, app_port)
            cluster = msgspec.structs.replace(
                config.clusters[0], health_check=msgspec.structs.replace(check, tcp=bad)
            )
            await client.apply(seal(msgspec.structs.replace(config, clusters=[cluster])))
            await until(lambda: not healthy(client, app_port), "unhealthy when the blocks are out of order")


# -- config changes and shutdown ----------------------------------------------------------------------------


async def test_removing_the_health_check_marks_endpoints_healthy_and_close_leaves_no_task() -> None:
    check = msgspec.structs.replace(FAST, unhealthy_threshold=1)
    dead = free_port()
    async with echo_app() as live:
        out = free_port()
        config = client_config(out, [dead, live], check, mtls=False)
        async with runtime(config, mesh_ca(), "client") as client:
            await until(lambda: not healthy(client, dead), "the dead endpoint unhealthy")
            assert checker_tasks()
            # A config change that keeps the endpoints keeps their verdicts.
            await client.apply(client_config(out, [live, dead], check, mtls=False))
            assert not healthy(client, dead)
            await client.apply(client_config(out, [dead, live], None, mtls=False))
            assert healthy(client, dead)
            failed = client.stats.cluster("echo").health_checks_failed
            await asyncio.sleep(0.2)  # several intervals: a stopped checker probes no more
            assert client.stats.cluster("echo").health_checks_failed == failed
            await client.apply(config)  # and back on: a new checker
            await until(lambda: not healthy(client, dead), "the dead endpoint unhealthy again")
        assert checker_tasks() == []


async def test_close_stops_a_probe_in_flight() -> None:
    # The endpoint accepts but never answers the HTTP request: the probe is in flight when the proxy closes.
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    check = msgspec.structs.replace(FAST, timeout_s=60.0, http=HttpCheckConfig())
    try:
        async with runtime(client_config(free_port(), [port], check, mtls=False), mesh_ca(), "client"):
            await until(lambda: bool(accepted), "a probe connected")
            assert len(checker_tasks()) == 2  # the scheduler and the probe waiting for its answer
        assert checker_tasks() == []
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_no_certificate_yet_is_no_verdict() -> None:
    ca = mesh_ca()
    async with echo_app() as app_port:
        inbound = free_port()
        check = msgspec.structs.replace(FAST, unhealthy_threshold=1)
        async with runtime(server_config(app_port, inbound, "echo-1"), ca, "echo"):
            client = ProxyRuntime("sidecar", {"type": "Dataplane", "name": "client-1", "mesh": MESH})
            try:
                await client.apply(client_config(free_port(), [inbound], check))  # before the certificate
                await asyncio.sleep(0.2)  # several intervals
                stats = client.stats.cluster("echo")
                assert (stats.health_checks_passed, stats.health_checks_failed) == (0, 0)
                assert healthy(client, inbound)
                await client.on_certificate(workload_cert(ca, "client"))
                await until(lambda: stats.health_checks_passed >= 1, "a probe passed with the certificate")
                assert stats.health_checks_failed == 0
            finally:
                await client.close()
