"""The zone ingress and zone egress listener: route by the SNI of the ClientHello, without decrypting.

Rules (DESIGN.md, "Cross-zone routing", "The data path"):
- Accept raw sockets and *peek* the ClientHello (``_sniff``): bounded (``max_hello_bytes``) and timed
  (``sniff_timeout_s``). Not TLS (or too large) → closed, ``not_tls``; no complete hello in time →
  closed, ``sniff_timeouts``; no SNI, or one no route knows → closed, ``no_route``. Nothing was consumed,
  so the bytes that go on are exactly the client's.
- A route (``IngressConfig.routes``, ``EgressConfig.routes``): pick an endpoint (source address as the
  hash key), connect plain TCP, and hand both sockets to the passthrough relay (``kmesh._fastpath.splice``:
  splice(2) where the kernel has it), which moves the encrypted bytes unchanged both ways. A zone ingress
  therefore never holds a workload's key: it asks for no certificate and terminates no TLS.
- Zone egress only, a MeshExternalService SNI (``EgressConfig.external_services``): terminate the
  sidecar's mTLS with the egress's certificate of that mesh; a client with no identity of the mesh is
  closed (``identity_rejected``), one the route's MeshTrafficPermission lists refuse (``_authz``) is
  closed (``denied``); then originate TCP or TLS to the external endpoints and relay (``RelayHalf``).
- A config change swaps the tables; routes keep their balancer state by SNI; live connections go on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine
from typing import Any, Final, Literal, final

from kmesh._fastpath.sni import SniStatus
from kmesh._fastpath.splice import relay_sockets
from kmesh.proxy._authz import authorize
from kmesh.proxy._relay import RelayHalf
from kmesh.proxy._sniff import RawAcceptor, SniffTimeout, peek_client_hello
from kmesh.proxy._stats import ProxyStats
from kmesh.proxy._tls import MeshTls, NoCertificate, peer_identity
from kmesh.proxy._upstream import Upstream, UpstreamUnavailable, hash_key_of
from kmesh.proxyconfig import ExternalRoute, LbConfig, ProxyConfig, SniRoute, cluster_name

__all__ = ["DEFAULT_MAX_HELLO_BYTES", "DEFAULT_SNIFF_TIMEOUT_S", "SniGateway"]

log = logging.getLogger("kmesh.proxy")

DEFAULT_SNIFF_TIMEOUT_S: Final = 5.0
# One TLS record (16 KiB) plus its header: a ClientHello never needs more in practice.
DEFAULT_MAX_HELLO_BYTES: Final = 16 * 1024 + 5
_TLS_HANDSHAKE_TIMEOUT_S: Final = 10.0


def _route_name(route: SniRoute) -> str:
    return f"{route.mesh}/{cluster_name(route.service, route.tags)}"


@final
class SniGateway:
    """One zone ingress or egress listener on ``host:port``; see the module docstring."""

    def __init__(
        self,
        kind: Literal["ingress", "egress"],
        host: str,
        port: int,
        stats: ProxyStats,
        *,
        tls: MeshTls | None = None,
        sniff_timeout_s: float = DEFAULT_SNIFF_TIMEOUT_S,
        max_hello_bytes: int = DEFAULT_MAX_HELLO_BYTES,
    ) -> None:
        self.kind = kind
        self.name = kind
        self.stats = stats
        self.listener_stats = stats.listener(kind)
        self._tls = tls
        self._sniff_timeout_s = sniff_timeout_s
        self._max_hello = max_hello_bytes
        self._acceptor = RawAcceptor(host, port, self._accepted)
        self._routes: dict[str, Upstream] = {}
        self._externals: dict[str, tuple[ExternalRoute, Upstream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self._acceptor.port

    @property
    def routes(self) -> dict[str, Upstream]:
        return self._routes

    async def start(self) -> None:
        """Bind and listen; raises OSError naming the address when it cannot."""
        await self._acceptor.start()

    def close(self) -> None:
        self._acceptor.close()

    async def abort_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def update(self, config: ProxyConfig) -> None:
        """Take the routes of ``config`` (its ``ingress`` or ``egress`` tables)."""
        table = config.ingress if self.kind == "ingress" else config.egress
        routes: dict[str, SniRoute] = dict(table.routes) if table is not None else {}
        fresh: dict[str, Upstream] = {}
        for sni, route in routes.items():
            upstream = self._routes.get(sni)
            if upstream is None:
                name = _route_name(route)
                upstream = Upstream(name, route.endpoints, LbConfig(), self.stats.cluster(name), mode="plain")
            else:
                upstream.update(route.endpoints, LbConfig(), mode="plain")
            fresh[sni] = upstream
        self._routes = fresh
        externals: dict[str, tuple[ExternalRoute, Upstream]] = {}
        if config.egress is not None:
            for sni, ext in config.egress.external_services.items():
                held = self._externals.get(sni)
                if held is None:
                    name = f"{ext.mesh}/external/{ext.name}"
                    upstream = Upstream(
                        name,
                        ext.endpoints,
                        LbConfig(),
                        self.stats.cluster(name),
                        mode="plain",
                        upstream_tls=ext.upstream_tls,
                    )
                else:
                    upstream = held[1]
                    upstream.update(ext.endpoints, LbConfig(), mode="plain", upstream_tls=ext.upstream_tls)
                externals[sni] = (ext, upstream)
        self._externals = externals

    # -- connections ------------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accepted(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self._spawn(self._handle(sock, address))

    async def _handle(self, sock: socket.socket, address: tuple[str, int]) -> None:
        stats = self.listener_stats
        stats.cx_total += 1
        stats.cx_active += 1
        try:
            await self._route(sock, address)
        finally:
            stats.cx_active -= 1

    async def _route(self, sock: socket.socket, address: tuple[str, int]) -> None:
        stats = self.listener_stats
        try:
            result = await peek_client_hello(sock, max_bytes=self._max_hello, timeout_s=self._sniff_timeout_s)
        except SniffTimeout:
            stats.sniff_timeouts += 1
            sock.close()
            return
        except OSError:
            stats.not_tls += 1
            sock.close()
            return
        if result.status is not SniStatus.FOUND:
            if result.status is SniStatus.NO_SNI:
                stats.no_route += 1
            else:
                stats.not_tls += 1
            sock.close()
            return
        sni = result.server_name or ""
        upstream = self._routes.get(sni)
        if upstream is not None:
            await self._pass_through(sock, address, upstream)
            return
        external = self._externals.get(sni) if self.kind == "egress" else None
        if external is not None:
            await self._terminate(sock, *external)
            return
        stats.no_route += 1
        log.info("no route for SNI", extra={"listener": self.name, "sni": sni})
        sock.close()

    async def _pass_through(self, sock: socket.socket, address: tuple[str, int], upstream: Upstream) -> None:
        stats = self.listener_stats
        try:
            upsock, pick = await upstream.dial_socket(hash_key=hash_key_of(address))
        except UpstreamUnavailable as exc:
            stats.upstream_failures += 1
            log.warning("passthrough failed", extra={"listener": self.name, "reason": str(exc)})
            sock.close()
            return
        cluster = upstream.stats
        cluster.cx_total += 1
        cluster.cx_active += 1
        try:
            sent, received = await relay_sockets(sock, upsock)
        finally:
            upstream.balancer.released(pick)
            cluster.cx_active -= 1
        stats.bytes_received += sent
        stats.bytes_sent += received
        cluster.bytes_sent += sent
        cluster.bytes_received += received

    async def _terminate(self, sock: socket.socket, route: ExternalRoute, upstream: Upstream) -> None:
        stats = self.listener_stats
        loop = asyncio.get_running_loop()
        if self._tls is None:
            stats.no_route += 1
            sock.close()
            return
        try:
            ctx = self._tls.server_context(route.mesh)
        except NoCertificate:
            stats.tls_errors += 1
            log.warning("no certificate for the mesh yet", extra={"listener": self.name, "mesh": route.mesh})
            sock.close()
            return
        down = RelayHalf()
        try:
            await loop.connect_accepted_socket(
                lambda: down, sock, ssl=ctx, ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            stats.tls_errors += 1
            sock.close()
            return
        assert down.transport is not None
        ids = peer_identity(down.transport.get_extra_info("ssl_object"))
        # Only the ids of this mesh count: the route's lists name no other, and a foreign id must not get
        # the mesh's default action.
        mesh_ids = [i for i in ids if i.startswith(f"spiffe://{route.mesh}/")]
        if not mesh_ids:
            stats.identity_rejected += 1
            down.abort()
            return
        verdict = authorize(route, mesh_ids, mtls=True)
        target = f"{route.mesh}/{route.name}"
        if not verdict.allowed:
            stats.denied += 1
            log.info(
                "connection denied",
                extra={"listener": self.name, "external": target, "reason": verdict.reason},
            )
            down.abort()
            return
        if verdict.shadow_denied:
            stats.shadow_denied += 1
            log.info(
                "connection would be denied",
                extra={"listener": self.name, "external": target, "reason": verdict.reason},
            )
        try:
            _, up, pick = await upstream.dial(RelayHalf)
        except UpstreamUnavailable as exc:
            stats.upstream_failures += 1
            log.warning("external service unreachable", extra={"listener": self.name, "reason": str(exc)})
            down.abort()
            return
        try:
            await upstream.carry(down, up, pick)
        finally:
            stats.bytes_received += down.bytes_received
            stats.bytes_sent += down.bytes_sent
