"""``DpServer``: a zone (or standalone) control plane's DP listener (TLS, :5678) and what runs beside it.

Each accepted connection is served by one :class:`~kmesh.dps._handler.ProxyHandler` task. Beside them the
server runs two background tasks:

- the store follower: it watches the store, coalesces change events over ``coalesce_s`` (a few ms),
  applies the changed keys to the shared :class:`~kmesh.dps._view.StoreView`, marks the connections whose
  config or certificates may depend on them, and keeps the zone ingresses' ``availableServices`` current.
  Changes flow as soon as they are committed: there is no polling tick.
- the insight loop: every ``insight_interval_s`` it writes the subscriptions whose counters changed, and
  every ``stale_after_s / 2`` it refreshes live ones and closes stale entries (see ``_records``).

Rules (DESIGN.md, "Roles", "Wire" and "Failure modes"):
- A zone control plane accepts proxies of its own zone only; the global refuses proxies (KDS), and this
  server refuses a zone control plane that dials it (the session does, with the reason).
- Which changes concern whom: a change of mesh M or inside it (a Dataplane, a policy, an external
  service) marks the sidecars of M; a ZoneEgress or Zone change, or another zone's ZoneIngress, marks
  every proxy;
  zone ingresses and egresses serve every mesh, so any change marks them. Secrets and Meshes mark the
  certificates of their mesh. Marking too much only costs a computation: unchanged configs are not sent.
- A connected proxy whose resource is deleted (by an operator, or with its mesh) is closed with
  ``resource_deleted``: it reconnects and registers again, or is told why it cannot.
- Stopping closes every connection with a Close (proxies keep their last config and reconnect elsewhere
  or later: failure mode 2), writes their disconnect times, and runs pending deregistrations.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Final, final

from kmesh._aio.serving import LiveConnections
from kmesh.dps._handler import ProxyHandler
from kmesh.dps._ingress import AvailableServicesKeeper
from kmesh.dps._records import DEFAULT_KEPT_SUBSCRIPTIONS, ProxyRecords
from kmesh.dps._shared import Registry, Settings, Shared
from kmesh.dps._state import Role
from kmesh.dps._view import StoreView
from kmesh.dps.messages import DEFAULT_DP_PORT, DEFAULT_HEARTBEAT_INTERVAL_S, CloseCode
from kmesh.dps.session import DEFAULT_HANDSHAKE_TIMEOUT_S
from kmesh.dps.transport import DpConnection
from kmesh.dps.zone_proxy_tokens import ensure_zone_proxy_signing_key
from kmesh.errors import StoreError
from kmesh.model import ResourceKey
from kmesh.store import ChangeEvent, ChangeKind, ResourceStore
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = ["DEFAULT_DP_PORT", "STANDALONE_ZONE", "DpServer"]

log = logging.getLogger("kmesh.dps")

# The zone name a standalone control plane gives its proxies (Kuma's default zone name).
STANDALONE_ZONE: Final = "default"
_EVERYONE: Final = frozenset({"ZoneEgress", "Zone"})
_NO_CONFIG: Final = frozenset({"Secret", "GlobalSecret"})
_INGRESS_INPUTS: Final = frozenset({"Dataplane", "ZoneIngress", "Mesh"})
_PROXY_TYPES: Final = frozenset({"Dataplane", "ZoneIngress", "ZoneEgress"})
_RETRY_S: Final = 1.0


@final
class DpServer:
    """The DP server of a zone or standalone control plane; see the module docstring.

    ``zone`` is the zone's name (:data:`STANDALONE_ZONE` in standalone mode). ``require_token=False``
    admits proxies without tokens (development only; logged). ``deregister_delay_s`` is how long a proxy
    that closed gracefully keeps its resource, in case it comes back. ``clock`` gives the times written in
    insights (UTC).
    """

    def __init__(
        self,
        store: ResourceStore,
        *,
        zone: str,
        host: str = "0.0.0.0",
        port: int = DEFAULT_DP_PORT,
        ssl_context: ssl.SSLContext,
        instance_id: str,
        cp_version: str,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        require_token: bool = True,
        deregister_delay_s: float = 10.0,
        coalesce_s: float = 0.005,
        insight_interval_s: float = 5.0,
        stale_after_s: float = 300.0,
        kept_subscriptions: int = DEFAULT_KEPT_SUBSCRIPTIONS,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        shutdown_timeout_s: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not zone:
            raise ValueError("a DP server serves one zone: zone must not be empty")
        self._store = store
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._handshake_s = handshake_timeout_s
        self._coalesce_s = coalesce_s
        self._insight_s = insight_interval_s
        self._stale_after_s = stale_after_s
        self._max_frame = max_frame_bytes
        self._shutdown_s = shutdown_timeout_s
        settings = Settings(
            zone=zone,
            instance_id=instance_id,
            cp_version=cp_version,
            heartbeat_interval_s=heartbeat_interval_s,
            require_token=require_token,
        )
        records_kwargs = {"clock": clock} if clock is not None else {}
        records = ProxyRecords(
            store,
            instance_id=instance_id,
            kept_subscriptions=kept_subscriptions,
            stale_after_s=stale_after_s,
            **records_kwargs,
        )
        view = StoreView(store)
        self._shared = Shared(
            settings=settings,
            store=store,
            view=view,
            records=records,
            keeper=AvailableServicesKeeper(store, view, zone=zone),
            registry=Registry(records, deregister_delay_s),
        )
        self._server: asyncio.Server | None = None
        self._handlers: dict[DpConnection, ProxyHandler] = {}
        self._live: LiveConnections[DpConnection] = LiveConnections(
            shutdown_s=shutdown_timeout_s,
            log=log,
            failure_message="DP connection failed",
            error_code=CloseCode.INTERNAL_ERROR,
            error_reason="internal error in the zone control plane",
        )
        self._background: list[asyncio.Task[None]] = []
        self._changed: set[ResourceKey] = set()
        self._resync = False
        self._change_ready = asyncio.Event()

    # -- public ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the real one when configured as 0). Raises RuntimeError before start."""
        if self._server is None:
            raise RuntimeError("the DP server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def zone(self) -> str:
        return self._shared.settings.zone

    def is_connected(self, key: ResourceKey) -> bool:
        """Whether the proxy of resource ``key`` has a live connection."""
        return key in self._shared.registry.live

    def connected_proxies(self) -> list[ResourceKey]:
        """The resource keys of every connected proxy, sorted."""
        return sorted(self._shared.registry.live)

    def pending_deregistrations(self) -> list[ResourceKey]:
        """Proxies that closed gracefully and will be deregistered unless they come back."""
        return self._shared.registry.pending()

    async def start(self) -> None:
        """Load the view, close stale insight entries, listen. Raises OSError when the address is taken,
        StoreError."""
        if self._server is not None:
            return
        settings = self._shared.settings
        if settings.require_token:
            await ensure_zone_proxy_signing_key(self._store)
        else:
            log.warning("proxies are admitted without tokens (require_token=false): development only")
        watch = self._store.watch()
        await self._shared.view.load()
        await self._shared.records.close_stale(set())
        await self._shared.keeper.refresh()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection,
            self._host,
            self._port,
            ssl=self._ssl,
            ssl_handshake_timeout=self._handshake_s,
        )
        self._background = [
            asyncio.create_task(self._pump(watch), name="dp-store-watch"),
            asyncio.create_task(self._follow(), name="dp-store-follow"),
            asyncio.create_task(self._maintain(), name="dp-insights"),
        ]
        log.info("DP server listening", extra={"address": f"{self._host}:{self.port}", "zone": settings.zone})

    async def stop(self) -> None:
        """Stop listening, close every connection (writing their insights), stop background work."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self._live.close_all(CloseCode.NORMAL, "the zone control plane is shutting down")
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        await self._shared.registry.run_pending()
        await server.wait_closed()
        log.info("DP server stopped")

    # -- connections ----------------------------------------------------------------------------------------

    def _new_connection(self) -> DpConnection:
        return DpConnection(
            Role.SERVER,
            max_frame_bytes=self._max_frame,
            handshake_timeout_s=self._handshake_s,
            on_made=self._on_made,
        )

    def _on_made(self, conn: DpConnection) -> None:
        handler = ProxyHandler(self._shared, conn)
        self._handlers[conn] = handler
        self._live.spawn(
            conn, handler.run(), name=f"dp-conn-{conn.peer}", on_done=lambda: self._handlers.pop(conn, None)
        )

    # -- background -----------------------------------------------------------------------------------------

    async def _pump(self, watch: AsyncIterator[ChangeEvent]) -> None:
        async for event in watch:
            if event.kind is ChangeKind.RESYNC or event.key is None:
                self._resync = True
            else:
                self._changed.add(event.key)
            self._change_ready.set()

    async def _follow(self) -> None:
        while True:
            await self._change_ready.wait()
            # Coalesce: a burst of commits (a KDS batch, a cascade) becomes one recomputation.
            await asyncio.sleep(self._coalesce_s)
            self._change_ready.clear()
            keys, self._changed = self._changed, set()
            resync, self._resync = self._resync, False
            try:
                if resync:
                    await self._shared.view.load()
                    self._react(None)
                else:
                    changed = await self._shared.view.apply(keys)
                    if not changed:
                        continue
                    self._react(changed)
                types = None if resync else {key.type for key in keys}
                if types is None or types & _INGRESS_INPUTS:
                    await self._shared.keeper.refresh()
            except Exception as exc:
                # The store failed, or a bug: keep following. The view stays as it was and everything is
                # listed again shortly (after a pause, so a store that stays down is not hammered).
                self._resync = True
                if isinstance(exc, StoreError):
                    log.warning("could not follow the store", extra={"error": str(exc)})
                else:
                    log.exception("failed to process store changes")
                await asyncio.sleep(_RETRY_S)
                self._change_ready.set()

    def _react(self, changed: list[ResourceKey] | None) -> None:
        """Mark the connections that ``changed`` (None: everything) may concern; see the module rules."""
        # A local ZoneIngress (its availableServices) changes no sidecar's config: sidecars only use the
        # ingresses of other zones, which arrive over KDS with their zone of origin.
        everyone = changed is None or any(
            key.type in _EVERYONE or (key.type == "ZoneIngress" and key.zone) for key in changed
        )
        meshes = {k.mesh for k in changed or () if k.mesh and k.type not in _NO_CONFIG}
        meshes |= {k.name for k in changed or () if k.type == "Mesh"}
        cert_meshes = {k.mesh for k in changed or () if k.type == "Secret"}
        cert_meshes |= {k.name for k in changed or () if k.type == "Mesh"}
        gone = {k for k in changed or () if k.type in _PROXY_TYPES and self._shared.view.get(k) is None}
        for handler in list(self._handlers.values()):
            if handler.key is None:
                continue
            if handler.key in gone and handler.registered:
                # Deleted by an operator (or with its mesh): the proxy reconnects, and registers again
                # or learns why it cannot.
                handler.close(
                    CloseCode.RESOURCE_DELETED,
                    f"{handler.key} was deleted from the zone control plane's store; reconnect to register",
                )
                continue
            zone_proxy = not handler.mesh
            config = everyone or zone_proxy or handler.mesh in meshes
            certs = changed is None or bool(handler.cert_meshes & cert_meshes)
            handler.mark_dirty(config=config, certs=certs)

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        last_sweep = loop.time()
        while True:
            await asyncio.sleep(self._insight_s)
            for handler in list(self._handlers.values()):
                await handler.flush_insight(refresh_after_s=self._stale_after_s / 2)
            if loop.time() - last_sweep >= self._stale_after_s / 2:
                last_sweep = loop.time()
                live = {sid for h in self._handlers.values() if (sid := h.subscription_id) is not None}
                try:
                    await self._shared.records.close_stale(live)
                except StoreError as exc:
                    log.warning("could not close stale proxy subscriptions", extra={"error": str(exc)})
