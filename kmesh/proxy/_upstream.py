"""Upstreams: a cluster (or an ingress/egress route) at run time, and how one connection reaches it.

An :class:`Upstream` holds the endpoints of its config, a :class:`~kmesh.proxy._lb.Balancer` over them, and
the cluster's counters. :meth:`Upstream.dial` opens one connection for one downstream connection.

Rules:
- Per-connection balancing: every downstream connection makes one pick (source address as the hash key
  for ring hash). A failed attempt (refused, timed out, TLS handshake failed, wrong identity) is reported
  to the balancer — which ejects the endpoint, so the next pick fails over, to another priority when a
  locality level runs dry — and the next attempt excludes the endpoints already tried. At most
  ``max_attempts`` (3) endpoints are tried, so a dead instance costs a caller one extra connect, not an
  error.
- How an endpoint is entered depends on how it is reached (``Endpoint.via``) and the mode:
  ``mesh``: mTLS with the mesh certificate to local instances, other zones' ingresses and the local egress,
  sending the endpoint's SNI (or the cluster's) and checking that the peer's SPIFFE id is the endpoint's
  ``spiffe_id`` (DESIGN.md: a mismatch closes the connection and is counted); ``plain``: TCP (a mesh
  without mTLS, or an ingress/egress passing encrypted bytes through); external endpoints get TLS
  origination per ``upstream_tls`` or plain TCP.
- MeshTimeout's ``idleTimeout`` closes a relayed pair no byte crossed for that long (``idle_timeout_s``,
  given to the relay by the listener); MeshCircuitBreaker's ``connectionLimits.maxConnections`` caps the
  cluster's open connections (new ones beyond it are refused and counted ``cx_overflow``).
- A config change calls :meth:`Upstream.update`: endpoint health and ejections carry over, and established
  connections are not touched.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal, TypeVar, final

from kmesh.errors import KmeshError
from kmesh.proxy._lb import Balancer, EndpointKey, Pick
from kmesh.proxy._relay import RelayHalf
from kmesh.proxy._stats import ClusterStats
from kmesh.proxy._tls import MeshTls, peer_identity
from kmesh.proxyconfig import Endpoint, LbConfig, OutlierDetectionConfig, UpstreamTls

__all__ = ["MAX_ATTEMPTS", "Mode", "Upstream", "UpstreamUnavailable", "external_context", "hash_key_of"]

MAX_ATTEMPTS: Final = 3
P = TypeVar("P", bound=asyncio.BaseProtocol)
T = TypeVar("T")
Mode = Literal["mesh", "plain"]


class UpstreamUnavailable(KmeshError, ConnectionError):
    """No endpoint of the upstream could be reached; the message says what was tried. The caller may retry
    (a later config or an ejection expiring may bring endpoints back)."""


@final
class Upstream:
    """One cluster or route at run time; see the module docstring."""

    def __init__(
        self,
        name: str,
        endpoints: Sequence[Endpoint],
        lb: LbConfig,
        stats: ClusterStats,
        *,
        mode: Mode,
        mesh: str = "",
        tls: MeshTls | None = None,
        sni: str | None = None,
        upstream_tls: UpstreamTls | None = None,
        connect_timeout_s: float = 5.0,
        outlier: OutlierDetectionConfig | None = None,
        idle_timeout_s: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.name = name
        self.idle_timeout_s = idle_timeout_s or None
        self.max_connections = max_connections
        self.stats = stats
        self.balancer = Balancer(endpoints, lb, outlier=outlier)
        self._mode: Mode = mode
        self._mesh = mesh
        self._tls = tls
        self._sni = sni
        self._upstream_tls = upstream_tls
        self._upstream_ctx: ssl.SSLContext | None = None
        self.connect_timeout_s = connect_timeout_s or 5.0

    def update(
        self,
        endpoints: Sequence[Endpoint],
        lb: LbConfig,
        *,
        mode: Mode,
        sni: str | None = None,
        upstream_tls: UpstreamTls | None = None,
        connect_timeout_s: float = 5.0,
        outlier: OutlierDetectionConfig | None = None,
        idle_timeout_s: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.balancer.update(endpoints, lb, outlier=outlier)
        self.idle_timeout_s = idle_timeout_s or None
        self.max_connections = max_connections
        self._mode = mode
        self._sni = sni
        if upstream_tls != self._upstream_tls:
            self._upstream_tls, self._upstream_ctx = upstream_tls, None
        self.connect_timeout_s = connect_timeout_s or 5.0

    # -- connecting -------------------------------------------------------------------------------------

    async def dial(
        self, factory: Callable[[], P], *, hash_key: bytes | None = None
    ) -> tuple[asyncio.Transport, P, Pick]:
        """Connect to one endpoint (see the module rules); the transport, its protocol, and the pick, for
        which the caller must call ``self.balancer.released(pick)`` when the connection ends (``carry``
        does).

        Raises UpstreamUnavailable when no attempt succeeded, or when the cluster already has
        ``max_connections`` open (MeshCircuitBreaker ``connectionLimits``; counted as ``cx_overflow``).
        """
        limit = self.max_connections
        if limit is not None and self.stats.cx_active >= limit:
            self.stats.cx_overflow += 1
            raise UpstreamUnavailable(
                f"cluster {self.name}: {limit} connections open, the circuit breaker's limit"
            )
        loop = asyncio.get_running_loop()
        (transport, protocol), pick = await self._first_success(
            lambda endpoint: self._attempt(loop, factory, endpoint), hash_key
        )
        return transport, protocol, pick

    async def dial_socket(self, *, hash_key: bytes | None = None) -> tuple[socket.socket, Pick]:
        """A plain connected non-blocking socket to one endpoint, for passthrough relays (splice). Raises
        UpstreamUnavailable as :meth:`dial`."""
        loop = asyncio.get_running_loop()

        async def connect(endpoint: Endpoint) -> socket.socket:
            # asyncio.timeout, not wait_for: on 3.11 wait_for costs an extra task per connection.
            async with asyncio.timeout(self.connect_timeout_s):
                return await _connect_socket(loop, endpoint.address, endpoint.port)

        return await self._first_success(connect, hash_key)

    async def carry(self, down: RelayHalf, up: RelayHalf, pick: Pick) -> None:
        """Relay ``down`` and ``up`` (``up`` dialled through ``pick``) until ``up`` closes, counting the
        connection and its bytes on this upstream and giving the pick back."""
        stats = self.stats
        stats.cx_total += 1
        stats.cx_active += 1
        down.link(up)
        try:
            await up.closed
        finally:
            self.balancer.released(pick)
            stats.cx_active -= 1
            stats.bytes_sent += up.bytes_sent
            stats.bytes_received += up.bytes_received

    def probe_context(self, endpoint: Endpoint) -> tuple[ssl.SSLContext | None, str | None, str | None]:
        """How an active health check reaches ``endpoint``, as :meth:`dial` would: the TLS context (None:
        plain TCP), the server name to send, and the SPIFFE id the peer must present (None: not checked).
        Raises NoCertificate when the mesh's certificate has not arrived yet."""
        ctx, server_name = self._tls_for(endpoint)
        mesh_peer = ctx is not None and self._mode == "mesh" and endpoint.via != "external"
        return ctx, server_name, endpoint.spiffe_id if mesh_peer else None

    async def _first_success(
        self, connect: Callable[[Endpoint], Awaitable[T]], hash_key: bytes | None
    ) -> tuple[T, Pick]:
        """``connect`` to picked endpoints until one works (at most MAX_ATTEMPTS, never one twice)."""
        loop = asyncio.get_running_loop()
        tried: list[EndpointKey] = []
        problems: list[str] = []
        while len(tried) < MAX_ATTEMPTS:
            pick = self.balancer.pick(loop.time(), hash_key=hash_key, exclude=tried)
            if pick is None:
                break
            tried.append(pick.key)
            self.stats.picked(pick.label)
            try:
                connected = await connect(pick.endpoint)
            except (OSError, ssl.SSLError, TimeoutError, _IdentityMismatch) as exc:
                self.balancer.failed(pick, loop.time())
                self.stats.connect_failures += 1
                problems.append(f"{pick.label}: {_describe(exc)}")
                continue
            self.balancer.connected(pick)
            return connected, pick
        if not tried:
            self.stats.no_healthy_endpoint += 1
            raise UpstreamUnavailable(f"cluster {self.name}: no endpoint to connect to")
        raise UpstreamUnavailable(f"cluster {self.name}: every attempt failed ({'; '.join(problems)})")

    async def _attempt(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], P], endpoint: Endpoint
    ) -> tuple[asyncio.Transport, P]:
        ctx, server_name = self._tls_for(endpoint)
        async with asyncio.timeout(self.connect_timeout_s):
            transport, protocol = await loop.create_connection(
                factory,
                endpoint.address,
                endpoint.port,
                ssl=ctx,
                server_hostname=server_name if ctx is not None else None,
            )
        expected = endpoint.spiffe_id if self._mode == "mesh" and endpoint.via != "external" else None
        if ctx is not None and expected is not None:
            presented = peer_identity(transport.get_extra_info("ssl_object"))
            if expected not in presented:
                transport.abort()
                self.stats.identity_mismatch += 1
                raise _IdentityMismatch(
                    f"the peer presented {', '.join(presented) or 'no SPIFFE id'}, not {expected}"
                )
        return transport, protocol

    def _tls_for(self, endpoint: Endpoint) -> tuple[ssl.SSLContext | None, str | None]:
        if endpoint.via == "external":
            if self._upstream_tls is None:
                return None, None
            if self._upstream_ctx is None:
                self._upstream_ctx = external_context(self._upstream_tls)
            return self._upstream_ctx, self._upstream_tls.server_name or endpoint.address
        if self._mode == "plain" or self._tls is None:
            return None, None
        return self._tls.client_context(self._mesh), endpoint.sni or self._sni


class _IdentityMismatch(Exception):
    """The peer's certificate verified but names another service than the endpoint's."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def hash_key_of(address: object) -> bytes | None:
    """The ring-hash key of a connection from ``address`` (a peername): its source IP as packed bytes."""
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            return socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            return host.encode()
    return None


def _literal_address(host: str, port: int) -> list[tuple[int, int, int, str, tuple[Any, ...]]] | None:
    """``getaddrinfo``'s answer for an IP literal, computed here: endpoints are almost always IPs, and the
    loop's ``getaddrinfo`` runs in a thread pool, which cost more than the connect itself per connection."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6:
        return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]


async def _connect_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    infos = _literal_address(host, port) or await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last if last is not None else OSError(f"{host}: no address")


def external_context(tls: UpstreamTls) -> ssl.SSLContext:
    """The client context for TLS origination to an external service (MeshExternalService ``tls``).

    ``verification``: Secured checks the chain and the server name, SkipSAN the chain only, SkipCA and
    SkipAll nothing. CAs and client certificates given inline or as files are loaded; ones referenced as
    mesh Secrets are not resolved by the proxy (the control plane would have to send them).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verification in ("SkipCA", "SkipAll"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = tls.verification == "Secured"
        ctx.verify_mode = ssl.CERT_REQUIRED
        if tls.ca_cert_inline is not None:
            ctx.load_verify_locations(cadata=tls.ca_cert_inline.decode("ascii"))
        elif tls.ca_cert_file is not None:
            ctx.load_verify_locations(cafile=tls.ca_cert_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if tls.client_cert_file is not None and tls.client_key_file is not None:
        ctx.load_cert_chain(tls.client_cert_file, tls.client_key_file)
    return ctx
