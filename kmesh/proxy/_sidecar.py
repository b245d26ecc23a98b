"""A sidecar's listeners: outbound (the app's plain TCP calls into the mesh) and inbound (mesh peers' mTLS
calls to the app).

Rules:
- Outbound: each accepted connection is balanced on its own (``Upstream.dial``) and relayed with
  back-pressure (``RelayHalf``); what the app sent before the upstream was ready is buffered, bounded.
  No endpoint reachable → the app's connection is closed and ``upstream_failures`` counted.
- Inbound: with mTLS the listener terminates TLS requiring a client certificate from the mesh CA, reads
  the peer's SPIFFE ids and authorizes them (``_authz``); a refused peer is closed before any byte reaches
  the app and counted (``denied``; ``identity_rejected`` when it has no identity). Then it connects to the
  app at ``service_address:service_port``.
- A listener's config (its cluster, its permissions) is swapped in place on a config change; connections
  already established are never touched. Closing a listener stops accepting; its connections run on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, final

from kmesh.proxy._authz import authorize
from kmesh.proxy._relay import RelayHalf
from kmesh.proxy._stats import ListenerStats
from kmesh.proxy._tls import MeshTls, peer_identity
from kmesh.proxy._upstream import Upstream, UpstreamUnavailable, hash_key_of
from kmesh.proxyconfig import InboundConfig, OutboundConfig

__all__ = ["InboundListener", "OutboundListener", "source_key"]

log = logging.getLogger("kmesh.proxy")


def source_key(transport: asyncio.BaseTransport) -> bytes | None:
    """The hash key of a connection for ring-hash balancing: its source IP address."""
    return hash_key_of(transport.get_extra_info("peername"))


class _Listener:
    """What both listeners share: the server, the live connection tasks, the counters."""

    def __init__(self, name: str, stats: ListenerStats) -> None:
        self.name = name
        self.stats = stats
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _opened(self, half: RelayHalf) -> None:
        self.stats.cx_total += 1
        self.stats.cx_active += 1

    def _closed(self, half: RelayHalf) -> None:
        self.stats.cx_active -= 1
        self.stats.bytes_received += half.bytes_received
        self.stats.bytes_sent += half.bytes_sent

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        """Stop accepting; established connections go on."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def abort_all(self) -> None:
        """Cancel connections still being set up (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@final
class OutboundListener(_Listener):
    """``config.address:config.port`` → the cluster ``upstream``."""

    def __init__(self, config: OutboundConfig, upstream: Upstream, stats: ListenerStats) -> None:
        super().__init__(f"outbound:{config.address}:{config.port}", stats)
        self.config = config
        self.upstream = upstream

    async def start(self) -> None:
        """Bind and listen. Raises OSError naming the address when the port is taken."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: RelayHalf(on_made=self._accepted, on_lost=self._closed),
                self.config.address,
                self.config.port,
                reuse_address=True,
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"outbound {self.config.address}:{self.config.port}: {exc.strerror}"
            ) from exc

    def _accepted(self, down: RelayHalf) -> None:
        self._opened(down)
        self._spawn(self._connect(down))

    async def _connect(self, down: RelayHalf) -> None:
        upstream = self.upstream
        assert down.transport is not None
        try:
            _, up, pick = await upstream.dial(
                lambda: RelayHalf(idle_timeout_s=upstream.idle_timeout_s), hash_key=source_key(down.transport)
            )
        except UpstreamUnavailable as exc:
            self.stats.upstream_failures += 1
            log.warning("outbound connection failed", extra={"listener": self.name, "reason": str(exc)})
            down.abort()
            return
        await upstream.carry(down, up, pick)


@final
class InboundListener(_Listener):
    """``config.address:config.port`` (mTLS when ``tls`` is given) → the app."""

    def __init__(
        self, config: InboundConfig, stats: ListenerStats, *, tls: MeshTls | None, mesh: str
    ) -> None:
        super().__init__(f"inbound:{config.port}", stats)
        self.config = config
        self._tls = tls
        self._mesh = mesh

    @property
    def mtls(self) -> bool:
        return self._tls is not None

    async def start(self) -> None:
        """Bind and listen. Raises OSError naming the address when the port is taken, NoCertificate when
        mTLS is on and no certificate is held yet."""
        loop = asyncio.get_running_loop()
        ctx = self._tls.server_context(self._mesh) if self._tls is not None else None
        try:
            self._server = await loop.create_server(
                lambda: RelayHalf(on_made=self._accepted, on_lost=self._closed),
                self.config.address,
                self.config.port,
                ssl=ctx,
                reuse_address=True,
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"inbound {self.config.address}:{self.config.port}: {exc.strerror}"
            ) from exc

    def _accepted(self, down: RelayHalf) -> None:
        self._opened(down)
        assert down.transport is not None
        ids = peer_identity(down.transport.get_extra_info("ssl_object")) if self.mtls else []
        verdict = authorize(self.config, ids, mtls=self.mtls)
        if not verdict.allowed:
            if self.mtls and not ids:
                self.stats.identity_rejected += 1
            else:
                self.stats.denied += 1
            log.info("connection denied", extra={"listener": self.name, "reason": verdict.reason})
            down.abort()
            return
        if verdict.shadow_denied:
            self.stats.shadow_denied += 1
            log.info("connection would be denied", extra={"listener": self.name, "reason": verdict.reason})
        self._spawn(self._connect(down))

    async def _connect(self, down: RelayHalf) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        try:
            _, up = await asyncio.wait_for(
                loop.create_connection(RelayHalf, config.service_address, config.service_port), 5.0
            )
        except (OSError, TimeoutError) as exc:
            self.stats.upstream_failures += 1
            log.warning(
                "the application is not reachable",
                extra={
                    "listener": self.name,
                    "app_address": f"{config.service_address}:{config.service_port}",
                    "reason": str(exc) or type(exc).__name__,
                },
            )
            down.abort()
            return
        down.link(up)
